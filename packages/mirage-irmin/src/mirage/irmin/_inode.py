"""Records of the pack backend, and directories as bounded-fanout hash tries (inodes).

Theory of operation: as in irmin-pack, a directory with at most :data:`FANOUT`
entries is one *values* record (its entries sorted by name); a larger one is a
*tree* inode: :data:`FANOUT` slots, an entry going to the slot that 5 bits of the
hash of its name pick (the 60-bit hash's most significant bits first: bits
``55 - 5 * depth`` to ``59 - 5 * depth``), each slot a directory of the same
kind one level deeper. The shape depends only on the set of entries (a removal that
leaves at most :data:`FANOUT` entries below a tree inode folds it back into values),
so equal directories have equal keys whatever the order of the changes, and a
change to one entry of a directory of ``n`` writes ``O(log n)`` records.

Record encodings (the key of a record is the SHA-1 of its kind byte and body)::

    contents  b"c" bytes
    values    b"v" count, then (name length, name, kind b"c" | b"n", key) sorted by name
    tree      b"t" depth, entry count, 32-bit slot bitmap, then the keys of the slots
    commit    b"C" root key, parent count, parents, date, then the message (UTF-8)

Counts and lengths are LEB128 varints. Every decoder is total: a value, or
:class:`DecodeError`.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import NamedTuple

from ._errors import DecodeError

__all__ = [
    "FANOUT",
    "KEY_LEN",
    "MAX_DEPTH",
    "CommitRecord",
    "Entry",
    "TreeInode",
    "Values",
    "decode_record",
    "encode_record",
    "key_of",
    "name_hash",
    "slot",
]

FANOUT = 32
KEY_LEN = 20
MAX_DEPTH = 12  # 5 bits a level of a 64-bit name hash; below, values of any size
CONTENTS, VALUES, TREE, COMMIT = b"c", b"v", b"t", b"C"


class Entry(NamedTuple):
    """A directory entry: contents (``node=False``) or a directory, by key (a named
    tuple: directories hold millions, and tuples order by name first)."""

    name: bytes
    node: bool
    key: bytes


@dataclass(frozen=True, slots=True)
class Values:
    entries: tuple[Entry, ...]  # sorted by name


@dataclass(frozen=True, slots=True)
class TreeInode:
    depth: int
    length: int  # entries below
    slots: tuple[bytes | None, ...]  # FANOUT keys or None


@dataclass(frozen=True, slots=True)
class CommitRecord:
    root: bytes
    parents: tuple[bytes, ...]
    date: int
    message: str


Record = bytes | Values | TreeInode | CommitRecord


def key_of(kind: bytes, body: bytes) -> bytes:
    return hashlib.sha1(kind + body).digest()


def name_hash(name: bytes) -> int:
    """The 60-bit hash of a name that places it in tree inodes."""
    return int.from_bytes(hashlib.blake2b(name, digest_size=8).digest(), "big") >> 4


def slot(h: int, depth: int) -> int:
    """The slot of the name of hash ``h`` in a tree inode at ``depth``. Names in
    hash order are contiguous in every slot, at every depth."""
    return (h >> (55 - 5 * depth)) & (FANOUT - 1)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int, what: str) -> tuple[int, int]:
    n = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise DecodeError(what, f"bad varint at {pos}")
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, pos


def encode_record(record: Record) -> tuple[bytes, bytes]:
    """The kind byte and body of a record."""
    if isinstance(record, bytes):
        return CONTENTS, record
    if isinstance(record, Values):
        out = [_varint(len(record.entries))]
        for name, node, key in record.entries:
            n = len(name)
            head = bytes((n,)) if n < 0x80 else _varint(n)
            out.append(head + name + (b"n" if node else b"c") + key)
        return VALUES, b"".join(out)
    if isinstance(record, TreeInode):
        bitmap = 0
        keys = []
        for i, k in enumerate(record.slots):
            if k is not None:
                bitmap |= 1 << i
                keys.append(k)
        head = _varint(record.depth) + _varint(record.length) + struct.pack(">I", bitmap)
        return TREE, head + b"".join(keys)
    parents = b"".join(record.parents)
    body = record.root + _varint(len(record.parents)) + parents + _varint(record.date)
    return COMMIT, body + record.message.encode()


def decode_record(kind: bytes, body: bytes, what: str = "record") -> Record:
    """A record from its kind byte and body; :class:`DecodeError` if malformed."""
    if kind == CONTENTS:
        return bytes(body)
    if kind == VALUES:
        count, pos = _read_varint(body, 0, what)
        entries = []
        previous = b""
        size = len(body)
        for _ in range(count):
            n = body[pos] if pos < size else 0x80
            if n < 0x80:
                pos += 1
            else:
                n, pos = _read_varint(body, pos, what)
            end = pos + n
            if n == 0 or end + 1 + KEY_LEN > size:
                raise DecodeError(what, "truncated or bad entry")
            name = body[pos:end]
            tag = body[end]
            if tag != 0x63 and tag != 0x6E:  # noqa: PLR1714 - c, n
                raise DecodeError(what, f"bad entry kind {tag}")
            if name <= previous:
                raise DecodeError(what, f"entries out of order at {name[:40]!r}")
            previous = name
            pos = end + 1 + KEY_LEN
            entries.append(Entry(name, tag == 0x6E, body[end + 1 : pos]))
        if pos != len(body):
            raise DecodeError(what, f"{len(body) - pos} bytes after the entries")
        return Values(tuple(entries))
    if kind == TREE:
        depth, pos = _read_varint(body, 0, what)
        length, pos = _read_varint(body, pos, what)
        if len(body) < pos + 4 or depth >= MAX_DEPTH:
            raise DecodeError(what, "truncated tree inode or depth too large")
        (bitmap,) = struct.unpack(">I", body[pos : pos + 4])
        pos += 4
        present = bin(bitmap).count("1")
        if len(body) != pos + present * KEY_LEN or present < 1 or length <= FANOUT:
            raise DecodeError(what, "tree inode slots do not match its bitmap")
        slots: list[bytes | None] = []
        for i in range(FANOUT):
            if bitmap >> i & 1:
                slots.append(bytes(body[pos : pos + KEY_LEN]))
                pos += KEY_LEN
            else:
                slots.append(None)
        return TreeInode(depth, length, tuple(slots))
    if kind == COMMIT:
        root = bytes(body[:KEY_LEN])
        if len(root) != KEY_LEN:
            raise DecodeError(what, "truncated commit")
        count, pos = _read_varint(body, KEY_LEN, what)
        if pos + KEY_LEN * count > len(body):
            raise DecodeError(what, "truncated commit parents")
        parents = tuple(
            bytes(body[pos + KEY_LEN * i : pos + KEY_LEN * (i + 1)]) for i in range(count)
        )
        pos += KEY_LEN * count
        if pos > len(body) or any(len(p) != KEY_LEN for p in parents):
            raise DecodeError(what, "truncated commit parents")
        date, pos = _read_varint(body, pos, what)
        try:
            message = bytes(body[pos:]).decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError(what, "commit message is not UTF-8") from None
        return CommitRecord(root, parents, date, message)
    raise DecodeError(what, f"unknown record kind {kind!r}")
