"""The xenstore wire format, as in Xen's ``xs_wire.h``.

A message is a 16-byte header (``type``, ``req_id``, ``tx_id``, ``len``: native
little-endian ``u32`` each) followed by ``len`` bytes of payload, at most 4096.
Payloads are NUL-separated strings; :func:`split_args` and :func:`join_args` convert.

:func:`pull_packet` is total: any bytes give a packet, ``None`` (more bytes needed)
or :class:`XsDecodeError`.
"""

from __future__ import annotations

import enum
import re
import struct
from dataclasses import dataclass

__all__ = [
    "ERROR_NAMES",
    "HEADER",
    "PAYLOAD_MAX",
    "Op",
    "Packet",
    "Perm",
    "XsDecodeError",
    "XsError",
    "decode_perms",
    "encode_perms",
    "join_args",
    "pull_packet",
    "push_packet",
    "split_args",
    "valid_path",
]

HEADER = struct.Struct("<IIII")
PAYLOAD_MAX = 4096
ABS_PATH_MAX = 3072
REL_PATH_MAX = 2048


class Op(enum.IntEnum):
    """Message types (``enum xsd_sockmsg_type``)."""

    CONTROL = 0
    DIRECTORY = 1
    READ = 2
    GET_PERMS = 3
    WATCH = 4
    UNWATCH = 5
    TRANSACTION_START = 6
    TRANSACTION_END = 7
    INTRODUCE = 8
    RELEASE = 9
    GET_DOMAIN_PATH = 10
    WRITE = 11
    MKDIR = 12
    RM = 13
    SET_PERMS = 14
    WATCH_EVENT = 15
    ERROR = 16
    IS_DOMAIN_INTRODUCED = 17
    RESUME = 18
    SET_TARGET = 19
    RESET_WATCHES = 21
    DIRECTORY_PART = 22
    INVALID = 0xFFFF


# Xen's ``xsd_errors`` table: the names that travel in ERROR payloads, with errno.
ERROR_NAMES: dict[str, int] = {
    "EINVAL": 22,
    "EACCES": 13,
    "EEXIST": 17,
    "EISDIR": 21,
    "ENOENT": 2,
    "ENOMEM": 12,
    "ENOSPC": 28,
    "EIO": 5,
    "ENOTEMPTY": 39,
    "ENOSYS": 38,
    "EROFS": 30,
    "EBUSY": 16,
    "EAGAIN": 11,
    "EISCONN": 106,
    "E2BIG": 7,
    "EPERM": 1,
}


class XsDecodeError(ValueError):
    """Bytes that are not a xenstore message (bad length, bad payload)."""


class XsError(Exception):
    """An error answered by xenstore: ``name`` is the wire name (``"ENOENT"``)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    @property
    def errno(self) -> int:
        return ERROR_NAMES.get(self.name, ERROR_NAMES["EINVAL"])


@dataclass(frozen=True, slots=True)
class Packet:
    """One message. ``op`` is an :class:`Op` or, for unknown types, the raw number."""

    op: Op | int
    req_id: int
    tx_id: int
    payload: bytes

    @classmethod
    def error(cls, request: Packet, name: str) -> Packet:
        return cls(Op.ERROR, request.req_id, request.tx_id, name.encode() + b"\0")

    @classmethod
    def reply(cls, request: Packet, payload: bytes) -> Packet:
        return cls(request.op, request.req_id, request.tx_id, payload)


def pull_packet(buf: bytes | bytearray | memoryview) -> tuple[Packet | None, int]:
    """Decode one message from the front of ``buf``: ``(packet, bytes used)``.

    ``(None, 0)`` when ``buf`` holds less than a whole message; raises
    :class:`XsDecodeError` when the header announces more than ``PAYLOAD_MAX``.
    """
    if len(buf) < HEADER.size:
        return None, 0
    op, req_id, tx_id, length = HEADER.unpack_from(buf, 0)
    if length > PAYLOAD_MAX:
        raise XsDecodeError(f"payload of {length} bytes exceeds {PAYLOAD_MAX}")
    end = HEADER.size + length
    if len(buf) < end:
        return None, 0
    try:
        kind: Op | int = Op(op)
    except ValueError:
        kind = op
    return Packet(kind, req_id, tx_id, bytes(buf[HEADER.size : end])), end


def push_packet(packet: Packet) -> bytes:
    if len(packet.payload) > PAYLOAD_MAX:
        raise XsError("E2BIG")
    return (
        HEADER.pack(int(packet.op), packet.req_id, packet.tx_id, len(packet.payload))
        + packet.payload
    )


def split_args(payload: bytes, count: int | None = None) -> list[bytes]:
    """The NUL-terminated strings of ``payload``.

    With ``count``, the first ``count - 1`` strings are NUL-terminated and the last
    takes the rest as is (a WRITE's value); a missing terminator is :class:`XsError`
    ``EINVAL``.
    """
    if count is not None:
        parts = payload.split(b"\0", count - 1)
        if len(parts) != count:
            raise XsError("EINVAL")
        return parts
    if not payload.endswith(b"\0"):
        raise XsError("EINVAL")
    return payload[:-1].split(b"\0")


def join_args(*args: bytes | str) -> bytes:
    return b"".join((a.encode() if isinstance(a, str) else a) + b"\0" for a in args)


_PATH = re.compile(r"[A-Za-z0-9\-/_@]*")


def valid_path(path: str) -> bool:
    """A syntactically valid xenstore path (absolute, relative or ``@special``)."""
    if not path or (path.endswith("/") and path != "/") or "//" in path:
        return False
    if not _PATH.fullmatch(path):
        return False
    if path.startswith("/"):
        return len(path.encode()) <= ABS_PATH_MAX
    return len(path.encode()) <= REL_PATH_MAX


@dataclass(frozen=True, slots=True)
class Perm:
    """One ACL entry: ``kind`` is ``r``, ``w``, ``b`` (both) or ``n`` (none)."""

    kind: str
    domid: int

    def encode(self) -> str:
        return f"{self.kind}{self.domid}"

    @classmethod
    def decode(cls, text: bytes | str) -> Perm:
        if isinstance(text, bytes):
            try:
                text = text.decode("ascii")
            except UnicodeDecodeError:
                raise XsError("EINVAL") from None
        if len(text) < 2 or text[0] not in "rwbn" or not text[1:].isdigit():
            raise XsError("EINVAL")
        domid = int(text[1:])
        if domid > 0xFFFF:
            raise XsError("EINVAL")
        return cls(text[0], domid)

    @property
    def can_read(self) -> bool:
        return self.kind in "rb"

    @property
    def can_write(self) -> bool:
        return self.kind in "wb"


def encode_perms(perms: tuple[Perm, ...]) -> bytes:
    return join_args(*(p.encode() for p in perms))


def decode_perms(args: list[bytes]) -> tuple[Perm, ...]:
    perms = tuple(Perm.decode(a) for a in args if a)
    if not perms:
        raise XsError("EINVAL")
    return perms
