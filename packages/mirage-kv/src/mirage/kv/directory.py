"""``directory``: a read-write store over a directory of the host.

Keys are paths below the root: values are regular files, dictionaries are
directories. The store never reaches outside its root:

- ``"."`` and ``".."`` segments name nothing (reads miss, writes raise
  :class:`KvNotFound`), as does a name with a NUL byte;
- a symbolic link is followed only if it leads to a file or directory inside the
  root; one that leads out is treated as missing by reads, and writes do not go
  through it (writing its own key replaces the link);
- special files (sockets, FIFOs, devices) are treated as missing.

A value is written to a temporary file in the same directory and moved over the old
one with :func:`os.replace`, so a reader sees the old or the new content, never a
mix (the temporary file is not synced: a power cut may still lose the last write).
``digest`` is the SHA-256 of a value; that of a dictionary hashes its entries.
``last_modified`` is the file's or directory's modification time. File I/O is
blocking, which is fine for the small stores this is meant for.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

from mirage.core.types import (
    KvAlreadyPresent,
    KvDictionaryExpected,
    KvError,
    KvKind,
    KvNotFound,
    KvValueExpected,
    kv_key,
)

__all__ = ["DirectoryKv"]

_CHUNK = 1 << 16

Names = list[str]  # the class's own ``list`` method hides the builtin in its body


def _segments(key: str) -> Names | None:
    """The names along ``key``, or ``None`` if one cannot be a file name."""
    key = kv_key(key)
    names = key.split("/") if key else []
    if any(n in (".", "..") or "\0" in n for n in names):
        return None
    return names


class DirectoryKv:
    """A ``kv_rw`` store over a directory of the host."""

    def __init__(self, root: Path) -> None:
        self._root = root

    @classmethod
    async def connect(cls, *, root: str) -> DirectoryKv:
        """Serve the existing directory ``root``."""
        real = Path(os.path.realpath(root))
        if not real.is_dir():
            raise NotADirectoryError(f"the directory store's root {root!r} is not a directory")
        return cls(real)

    async def disconnect(self) -> None:
        pass

    # --- where keys are --------------------------------------------------------------

    def _inside(self, real: str) -> Path | None:
        root = str(self._root)
        if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
            return Path(real)
        return None

    def _real(self, path: Path) -> Path | None:
        """The real path of ``path`` if it exists inside the root, links followed."""
        try:
            real = os.path.realpath(path, strict=True)
        except (OSError, ValueError):
            return None
        return self._inside(real)

    def _locate(self, key: str) -> tuple[Path | None, KvKind | None]:
        names = _segments(key)
        if names is None:
            return None, None
        real = self._real(self._root.joinpath(*names))
        if real is None:
            return None, None
        try:
            mode = os.stat(real).st_mode
        except OSError:
            return None, None
        if stat.S_ISDIR(mode):
            return real, KvKind.DICTIONARY
        if stat.S_ISREG(mode):
            return real, KvKind.VALUE
        return None, None

    def _value(self, key: str) -> Path:
        path, kind = self._locate(key)
        if path is None:
            raise KvNotFound(kv_key(key))
        if kind is KvKind.DICTIONARY:
            raise KvValueExpected(kv_key(key))
        return path

    def _dictionary(self, key: str) -> Path:
        path, kind = self._locate(key)
        if path is None:
            raise KvNotFound(kv_key(key))
        if kind is KvKind.VALUE:
            raise KvDictionaryExpected(kv_key(key))
        return path

    # --- reading ---------------------------------------------------------------------

    async def exists(self, key: str) -> KvKind | None:
        return self._locate(key)[1]

    async def get(self, key: str) -> bytes:
        return self._value(key).read_bytes()

    async def get_partial(self, key: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError(f"offset and length must not be negative: {offset}, {length}")
        with open(self._value(key), "rb") as f:
            f.seek(offset)
            return f.read(length)

    def _entries(self, directory: Path) -> list[tuple[str, KvKind]]:
        out = []
        with os.scandir(directory) as it:
            for entry in it:
                kind = self._locate_entry(directory / entry.name)
                if kind is not None:
                    out.append((entry.name, kind))
        return sorted(out)

    def _locate_entry(self, path: Path) -> KvKind | None:
        real = self._real(path)
        if real is None:
            return None
        mode = os.stat(real).st_mode
        if stat.S_ISDIR(mode):
            return KvKind.DICTIONARY
        return KvKind.VALUE if stat.S_ISREG(mode) else None

    async def list(self, key: str) -> list[tuple[str, KvKind]]:
        return self._entries(self._dictionary(key))

    async def last_modified(self, key: str) -> float:
        path, _ = self._locate(key)
        if path is None:
            raise KvNotFound(kv_key(key))
        return float(os.stat(path).st_mtime)

    def _digest(self, path: Path, kind: KvKind) -> bytes:
        if kind is KvKind.VALUE:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                while chunk := f.read(_CHUNK):
                    h.update(chunk)
            return h.digest()
        h = hashlib.sha256(b"dictionary\0")
        for name, child_kind in self._entries(path):
            tag = b"v" if child_kind is KvKind.VALUE else b"d"
            child = self._digest(Path(os.path.realpath(path / name)), child_kind)
            h.update(tag + os.fsencode(name) + b"\0" + child)
        return h.digest()

    async def digest(self, key: str) -> bytes:
        path, kind = self._locate(key)
        if path is None or kind is None:
            raise KvNotFound(kv_key(key))
        return self._digest(path, kind)

    async def size(self, key: str) -> int:
        return os.stat(self._value(key)).st_size

    # --- writing ---------------------------------------------------------------------

    def _names_for_write(self, key: str) -> Names:
        names = _segments(key)
        if names is None:
            raise KvNotFound(kv_key(key), f"{kv_key(key)!r} cannot name a file")
        if self._locate(key)[1] is KvKind.DICTIONARY:
            raise KvValueExpected(kv_key(key))
        return names

    def _parent_for_write(self, names: Names) -> Path:
        """The real directory that holds ``names``, with missing directories made."""
        current = self._root
        for i, name in enumerate(names[:-1]):
            path = current / name
            if not os.path.lexists(path):
                path.mkdir()
                current = path
                continue
            real = self._real(path)
            if real is None or not real.is_dir():
                raise KvDictionaryExpected("/".join(names[: i + 1]))
            current = real
        return current

    def _write(self, directory: Path, name: str, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".mirage-kv-", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), 0o644)
                f.write(data)
            os.replace(tmp, directory / name)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    async def set(self, key: str, data: bytes) -> None:
        names = self._names_for_write(key)
        self._write(self._parent_for_write(names), names[-1], bytes(data))

    async def set_partial(self, key: str, offset: int, data: bytes) -> None:
        if offset < 0:
            raise ValueError(f"offset must not be negative: {offset}")
        names = self._names_for_write(key)
        directory = self._parent_for_write(names)
        path, kind = self._locate(key)
        current = path.read_bytes() if path is not None and kind is KvKind.VALUE else b""
        head = current[:offset].ljust(offset, b"\0")
        self._write(directory, names[-1], head + data + current[offset + len(data) :])

    def _lexical(self, names: Names) -> Path:
        """The path of ``names`` with its parent's links followed, not its own."""
        parent = self._real(self._root.joinpath(*names[:-1]))
        assert parent is not None
        return parent / names[-1]

    async def remove(self, key: str) -> None:
        names = _segments(key)
        if names is None or self._locate(key)[1] is None:
            raise KvNotFound(kv_key(key))
        if not names:
            for entry in os.scandir(self._root):
                self._remove_path(Path(entry.path))
            return
        self._remove_path(self._lexical(names))

    @staticmethod
    def _remove_path(path: Path) -> None:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()

    async def rename(self, source: str, dest: str) -> None:
        src, dst = _segments(source), _segments(dest)
        kind = self._locate(source)[1] if src is not None else None
        if src is None or kind is None:
            raise KvNotFound(kv_key(source))
        if dst is None:
            raise KvNotFound(kv_key(dest), f"{kv_key(dest)!r} cannot name a file")
        if src == dst:
            return
        if dst[: len(src)] == src:
            raise KvError(kv_key(dest), f"cannot move {kv_key(source)!r} into itself")
        there = self._locate(dest)[1]
        if there is KvKind.DICTIONARY or (there is KvKind.VALUE and kind is KvKind.DICTIONARY):
            raise KvAlreadyPresent(kv_key(dest))
        directory = self._parent_for_write(dst)
        os.replace(self._lexical(src), directory / dst[-1])
