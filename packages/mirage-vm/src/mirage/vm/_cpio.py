"""A writer of the cpio "newc" format, the one the Linux kernel unpacks as initramfs.

Each entry is a 110-byte ASCII header (magic ``070701`` and thirteen 8-digit hex
fields), the NUL-terminated name padded to 4 bytes, then the data padded to 4 bytes.
The archive ends with the entry ``TRAILER!!!``. Entries get fixed times and owners, so
the same contents give the same bytes.
"""

from __future__ import annotations

import stat
from typing import BinaryIO

__all__ = ["CpioWriter", "read_cpio"]

_MAGIC = b"070701"


def _pad(n: int) -> bytes:
    return b"\0" * (-n % 4)


class CpioWriter:
    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._ino = 1
        self._names: set[str] = set()

    def _entry(
        self,
        name: str,
        mode: int,
        data: bytes = b"",
        rdev: tuple[int, int] = (0, 0),
        nlink: int = 1,
    ) -> None:
        name = name.lstrip("/")
        if name in self._names:
            raise ValueError(f"duplicate cpio entry {name!r}")
        self._names.add(name)
        encoded = name.encode() + b"\0"
        fields = (
            self._ino,
            mode,
            0,
            0,
            nlink,
            0,
            len(data),
            0,
            0,
            rdev[0],
            rdev[1],
            len(encoded),
            0,
        )
        self._ino += 1
        header = _MAGIC + b"".join(b"%08X" % f for f in fields)
        self._out.write(header + encoded + _pad(len(header) + len(encoded)))
        self._out.write(data + _pad(len(data)))

    def directory(self, name: str, mode: int = 0o755) -> None:
        self._entry(name, stat.S_IFDIR | mode, nlink=2)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def char_device(self, name: str, major: int, minor: int, mode: int = 0o666) -> None:
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def has(self, name: str) -> bool:
        return name.lstrip("/") in self._names

    def close(self) -> None:
        self._entry("TRAILER!!!", 0, nlink=1)


def read_cpio(archive: bytes) -> dict[str, tuple[int, bytes]]:
    """``{name: (mode, data)}`` of a newc archive (or of several one after another, as
    the kernel takes them), up to its ``TRAILER!!!``; ValueError if it is not one."""
    entries: dict[str, tuple[int, bytes]] = {}
    at = 0
    while at < len(archive):
        if archive[at : at + 4] == b"\0\0\0\0":  # padding between archives
            at += 4
            continue
        header = archive[at : at + 110]
        if len(header) < 110 or header[:6] != _MAGIC:
            raise ValueError(f"no cpio newc header at offset {at}")
        try:
            fields = [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        except ValueError:
            raise ValueError(f"a damaged cpio header at offset {at}") from None
        mode, size, namesize = fields[1], fields[6], fields[11]
        end_name = at + 110 + namesize
        if namesize < 1 or end_name > len(archive):
            raise ValueError(f"a damaged cpio entry name at offset {at}")
        name = archive[at + 110 : end_name - 1].decode(errors="replace")
        body = (end_name + 3) & ~3
        if body + size > len(archive):
            raise ValueError(f"cpio entry {name!r} is cut short")
        at = (body + size + 3) & ~3
        if name == "TRAILER!!!":
            continue
        entries[name] = (mode, archive[body : body + size])
    return entries
