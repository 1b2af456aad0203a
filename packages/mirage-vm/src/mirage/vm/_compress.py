"""A compressed initramfs: the smallest artifact, paid for at boot.

``--vm-compress xz`` writes the image as one XZ stream the way Linux's initramfs
unpacker reads it (``xz --check=crc32``: its decoder knows no other check), with the
x86 branch filter in front of LZMA2 on x86_64 images (the kernel's decoder has it; it
makes the interpreter's and the extensions' machine code compress better) and a
dictionary of 8 MiB, which the kernel allocates while it unpacks. Archives appended
later (the host files of ``mirage run``) stay uncompressed: the kernel unpacks a
compressed archive and the plain one after it in turn. Under software emulation the
kernel takes a second or two more to decompress than to copy; the default is none.
"""

from __future__ import annotations

import lzma
from pathlib import Path

from mirage.core import MirageError

from ._arch import Arch

__all__ = ["COMPRESSIONS", "compress_initrd", "xz_initramfs"]

COMPRESSIONS = ("none", "xz")
_DICTIONARY = 8 << 20


def xz_initramfs(data: bytes, arch: Arch) -> bytes:
    """``data`` as an XZ stream Linux unpacks as an initramfs."""
    lzma2 = {"id": lzma.FILTER_LZMA2, "preset": 6, "dict_size": _DICTIONARY}
    filters = [{"id": lzma.FILTER_X86}, lzma2] if arch.name == "x86_64" else [lzma2]
    return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32, filters=filters)


def compress_initrd(path: Path, kind: str | None, arch: Arch) -> int:
    """Compress the initramfs at ``path`` in place as ``kind`` says; its new size."""
    kind = kind or "none"
    if kind not in COMPRESSIONS:
        raise MirageError(
            f"no initramfs compression {kind!r}",
            where="--vm-compress",
            hint=f"choose one of: {', '.join(COMPRESSIONS)}",
        )
    if kind == "xz":
        path.write_bytes(xz_initramfs(path.read_bytes(), arch))
    return path.stat().st_size
