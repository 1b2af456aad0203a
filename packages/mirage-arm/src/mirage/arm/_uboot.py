"""U-Boot boot scripts: the text, and the legacy image (``boot.scr``) U-Boot runs.

``mkimage -T script`` wraps a script in U-Boot's legacy image format: a 64-byte
big-endian header (magic, header CRC-32, time, data size, load and entry addresses,
data CRC-32, OS, architecture, image type, compression, a 32-byte name), then the data,
which for a script is a list of part sizes ended by a zero word, then the script
itself. We write it without mkimage; the time is 0, so that a build is reproducible.
"""

from __future__ import annotations

import struct
import zlib

__all__ = ["IH_ARCH", "script_image"]

IH_MAGIC = 0x27051956
IH_OS_LINUX = 5
IH_TYPE_SCRIPT = 6
IH_COMP_NONE = 0
IH_ARCH = {"armv7": 2, "aarch64": 22}  # IH_ARCH_ARM, IH_ARCH_ARM64
_HEADER = struct.Struct(">7I4B32s")


def script_image(script: str, *, arch: str, name: str = "", time: int = 0) -> bytes:
    """``script`` as a ``boot.scr`` for U-Boot on ``arch`` (``aarch64`` or ``armv7``)."""
    body = script.encode()
    data = struct.pack(">II", len(body), 0) + body  # the last part is not padded
    fields = [IH_MAGIC, 0, time, len(data), 0, 0, zlib.crc32(data)]
    tail = (IH_OS_LINUX, IH_ARCH[arch], IH_TYPE_SCRIPT, IH_COMP_NONE, name.encode()[:32])
    header_crc = zlib.crc32(_HEADER.pack(*fields, *tail))
    fields[1] = header_crc
    return _HEADER.pack(*fields, *tail) + data
