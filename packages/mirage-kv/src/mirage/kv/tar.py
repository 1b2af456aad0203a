"""``tar``: a read-only store over a tar archive (plain, gzip, bzip2 or xz).

The archive is read whole at ``connect``, so that any damage shows there, as one
:class:`TarFormatError`, and never later as a failed ``get``.

- Regular files (and hard links to them) are values; directory members and the
  directories implied by member paths are dictionaries. Symbolic links and special
  files are left out.
- Member paths are keys: ``"./"`` and leading ``"/"`` are dropped; a member whose
  path has a ``".."`` segment would leave the archive's root and makes the archive
  invalid, as does a file where a directory is (``a`` and ``a/b``) or the reverse.
  A later member with the path of an earlier file replaces it, as ``tar`` would.
"""

from __future__ import annotations

import io
import lzma
import tarfile
import zlib
from typing import IO

from mirage.core.types import KvError

from ._tree import Dictionary, TreeKv, Value, insert

__all__ = ["TarFormatError", "TarKv", "load"]


class TarFormatError(ValueError):
    """The file is not a tar archive that can be served."""


_DECODE_ERRORS = (
    tarfile.TarError,
    EOFError,
    OSError,
    ValueError,
    OverflowError,
    KeyError,
    zlib.error,
    lzma.LZMAError,
)


def _names(path: str) -> list[str]:
    names = [n for n in path.split("/") if n not in ("", ".")]
    if ".." in names:
        raise TarFormatError(f"member {path!r} leads out of the archive's root")
    return names


def _dictionary(root: Dictionary, names: list[str], mtime: float, path: str) -> None:
    node = root
    for name in names:
        child = node.entries.get(name)
        if child is None:
            child = node.entries[name] = Dictionary(mtime=mtime)
        elif isinstance(child, Value):
            raise TarFormatError(f"member {path!r} is a directory below a file")
        node = child
    node.mtime = mtime


def load(fileobj: IO[bytes]) -> Dictionary:
    """The tree of a tar archive; raises :class:`TarFormatError` and nothing else."""
    root = Dictionary()
    try:
        with tarfile.open(fileobj=fileobj, mode="r:*") as archive:
            for member in archive:
                names = _names(member.name)
                mtime = float(member.mtime)
                if member.isdir():
                    _dictionary(root, names, mtime, member.name)
                elif member.isfile() or member.islnk():
                    stream = archive.extractfile(member)
                    data = stream.read() if stream is not None else b""
                    if len(data) != member.size and not member.islnk():
                        raise TarFormatError(f"member {member.name!r} is truncated")
                    try:
                        insert(root, names, Value(data, mtime))
                    except KvError:
                        raise TarFormatError(
                            f"member {member.name!r} is a file where a directory is"
                        ) from None
                    root.mtime = max(root.mtime, mtime)
    except TarFormatError:
        raise
    except _DECODE_ERRORS as exc:
        raise TarFormatError(f"not a readable tar archive: {type(exc).__name__}: {exc}") from exc
    return root


class TarKv(TreeKv):
    """A ``kv_ro`` store over the files of a tar archive."""

    @classmethod
    async def connect(cls, *, path: str) -> TarKv:
        """Read the archive at ``path``; raises :class:`TarFormatError` if it is bad."""
        with open(path, "rb") as f:
            return cls(load(f))

    @classmethod
    def from_bytes(cls, data: bytes) -> TarKv:
        """A store over an archive held in memory."""
        return cls(load(io.BytesIO(data)))
