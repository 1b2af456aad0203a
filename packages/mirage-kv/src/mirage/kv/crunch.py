"""``crunch``: a read-only store whose files were embedded into the artifact.

At build time, :func:`mirage.kv._crunch.build` reads a directory of the project
and writes a module holding every file as a bytes literal; the artifact passes that
table to :meth:`CrunchKv.connect`. Nothing here reads the host's files, and this
module does not import the build step.
"""

from __future__ import annotations

from collections.abc import Mapping

from ._tree import Dictionary, TreeKv, Value, insert, segments

__all__ = ["CrunchKv", "FileTable"]

FileTable = Mapping[str, tuple[bytes, float]]
"""Full key -> (content, modification time), as the build step writes it."""


class CrunchKv(TreeKv):
    """A ``kv_ro`` store over files embedded at build time."""

    @classmethod
    async def connect(cls, *, files: FileTable, root: str | None = None) -> CrunchKv:
        """Serve ``files``; ``root`` (the directory they came from) is not used."""
        tree = Dictionary(mtime=max((mtime for _, mtime in files.values()), default=0.0))
        for key, (data, mtime) in files.items():
            insert(tree, segments(key), Value(data, float(mtime)))
        return cls(tree)
