"""Pack files (``.pack``) and their version-2 indexes (``.idx``), read and written.

A pack is ``PACK``, version, object count, the entries, then the SHA-1 of all that.
An entry is a type and size header (3 type bits, then 7-bit groups), for an
``OFS_DELTA`` the distance back to its base, for a ``REF_DELTA`` the base's id, then
the zlib-compressed data. A delta is the base size, the result size, then copy
instructions (``1xxxxxxx``: offset and size bytes from the base) and insert
instructions (``0xxxxxxx``: that many literal bytes).

:class:`Pack` reads objects by id through an index (read from an ``.idx`` or built by
:func:`index_pack`); :func:`write_pack` and :func:`write_index` write them. Every
reader raises :class:`DecodeError` for malformed input and checks object ids, so a
pack is never trusted.
"""

from __future__ import annotations

import itertools
import mmap
import os
import struct
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ._errors import CorruptObject, DecodeError
from ._objects import OID_LEN, ObjectType, deflate, hash_object, hasher, oid_length

__all__ = [
    "OFS_DELTA",
    "REF_DELTA",
    "Pack",
    "PackIndex",
    "apply_delta",
    "create_delta",
    "index_pack",
    "read_index",
    "write_hashed_pack",
    "write_index",
    "write_pack",
]

OFS_DELTA = 6
REF_DELTA = 7
_TYPES = {1: ObjectType.COMMIT, 2: ObjectType.TREE, 3: ObjectType.BLOB, 4: ObjectType.TAG}
_IDX_MAGIC = b"\xfftOc"
_CHUNK = 1 << 16

BaseLookup = Callable[[bytes], "tuple[ObjectType, bytes] | None"]


# ---------------------------------------------------------------------------
# Deltas


def _varint(data: bytes | memoryview, pos: int, what: str) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise DecodeError(what, "truncated delta size")
        c = data[pos]
        pos += 1
        value |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return value, pos


def apply_delta(base: bytes, delta: bytes, what: str = "delta") -> bytes:
    """The object ``delta`` makes of ``base``; :class:`DecodeError` if it does not fit."""
    src_size, pos = _varint(delta, 0, what)
    dst_size, pos = _varint(delta, pos, what)
    if src_size != len(base):
        raise DecodeError(what, f"base has {len(base)} bytes, delta expects {src_size}")
    out = bytearray()
    end = len(delta)
    while pos < end:
        op = delta[pos]
        pos += 1
        if op & 0x80:
            offset = size = 0
            for i in range(4):
                if op & (1 << i):
                    if pos >= end:
                        raise DecodeError(what, "truncated copy instruction")
                    offset |= delta[pos] << (8 * i)
                    pos += 1
            for i in range(3):
                if op & (0x10 << i):
                    if pos >= end:
                        raise DecodeError(what, "truncated copy instruction")
                    size |= delta[pos] << (8 * i)
                    pos += 1
            size = size or 0x10000
            if offset + size > len(base):
                raise DecodeError(what, "copy beyond the end of the base")
            out += base[offset : offset + size]
        elif op:
            if pos + op > end:
                raise DecodeError(what, "truncated insert instruction")
            out += delta[pos : pos + op]
            pos += op
        else:
            raise DecodeError(what, "reserved delta instruction 0")
        if len(out) > dst_size:
            raise DecodeError(what, "delta result longer than announced")
    if len(out) != dst_size:
        raise DecodeError(what, f"delta result has {len(out)} bytes, {dst_size} announced")
    return bytes(out)


def _put_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def create_delta(base: bytes, target: bytes, block: int = 16) -> bytes:
    """A delta from ``base`` to ``target``: copies of ``block``-byte runs found in the
    base (extended forwards), inserts for the rest."""
    index: dict[bytes, int] = {}
    for i in range(0, len(base) - block + 1, block):
        index.setdefault(base[i : i + block], i)
    out = bytearray(_put_varint(len(base)) + _put_varint(len(target)))
    literal = bytearray()

    def flush() -> None:
        for i in range(0, len(literal), 127):
            chunk = literal[i : i + 127]
            out.append(len(chunk))
            out.extend(chunk)
        literal.clear()

    pos = 0
    while pos < len(target):
        start = index.get(target[pos : pos + block]) if pos + block <= len(target) else None
        if start is None:
            literal.append(target[pos])
            pos += 1
            continue
        length = block
        while (
            pos + length < len(target)
            and start + length < len(base)
            and length < 0xFFFFFF
            and target[pos + length] == base[start + length]
        ):
            length += 1
        flush()
        op, args = 0x80, bytearray()
        for i in range(4):
            byte = (start >> (8 * i)) & 0xFF
            if byte:
                op |= 1 << i
                args.append(byte)
        for i in range(3):
            byte = (length >> (8 * i)) & 0xFF
            if byte:
                op |= 0x10 << i
                args.append(byte)
        out.append(op)
        out += args
        pos += length
    flush()
    return bytes(out)


# ---------------------------------------------------------------------------
# Entries


@dataclass(frozen=True, slots=True)
class _Entry:
    """A raw entry: pack type number, size, base (offset or id) and data span."""

    type: int
    size: int
    base_offset: int | None
    base_id: bytes | None
    data_start: int


def _entry_header(
    data: bytes | memoryview | mmap.mmap, pos: int, what: str, oid_len: int = OID_LEN
) -> _Entry:
    if pos >= len(data):
        raise DecodeError(what, f"entry at {pos} beyond the end")
    c = data[pos]
    start = pos
    pos += 1
    kind = (c >> 4) & 7
    size = c & 0x0F
    shift = 4
    while c & 0x80:
        if pos >= len(data) or shift > 60:
            raise DecodeError(what, f"entry at {start}: truncated header")
        c = data[pos]
        pos += 1
        size |= (c & 0x7F) << shift
        shift += 7
    base_offset = base_id = None
    if kind == OFS_DELTA:
        if pos >= len(data):
            raise DecodeError(what, f"entry at {start}: truncated base offset")
        c = data[pos]
        pos += 1
        off = c & 0x7F
        while c & 0x80:
            if pos >= len(data) or off > 1 << 56:
                raise DecodeError(what, f"entry at {start}: truncated base offset")
            c = data[pos]
            pos += 1
            off = ((off + 1) << 7) | (c & 0x7F)
        if off == 0 or off > start:
            raise DecodeError(what, f"entry at {start}: base offset {off} out of range")
        base_offset = start - off
    elif kind == REF_DELTA:
        base_id = bytes(data[pos : pos + oid_len])
        if len(base_id) != oid_len:
            raise DecodeError(what, f"entry at {start}: truncated base id")
        pos += oid_len
    elif kind not in _TYPES:
        raise DecodeError(what, f"entry at {start}: bad type {kind}")
    return _Entry(kind, size, base_offset, base_id, pos)


def _inflate(
    data: bytes | memoryview | mmap.mmap, pos: int, size: int, what: str
) -> tuple[bytes, int]:
    """Decompress the zlib stream at ``pos`` that should give ``size`` bytes; returns
    them and the offset just past the stream."""
    d = zlib.decompressobj()
    out: list[bytes] = []
    got = fed = 0
    step = max(size + 64, 256)
    try:
        while not d.eof:
            chunk = data[pos + fed : pos + fed + step]
            if not chunk:
                raise DecodeError(what, f"zlib stream at {pos} truncated")
            fed += len(chunk)
            out.append(d.decompress(chunk, size + 1 - got))
            got += len(out[-1])
            if d.unconsumed_tail:
                raise DecodeError(what, f"zlib stream at {pos} longer than {size} bytes")
            step = _CHUNK
    except zlib.error as e:
        raise DecodeError(what, f"zlib stream at {pos}: {e}") from None
    raw = b"".join(out)
    if len(raw) != size:
        raise DecodeError(what, f"entry at {pos}: {len(raw)} bytes, header says {size}")
    return raw, pos + fed - len(d.unused_data)


def _check_header(data: bytes | memoryview | mmap.mmap, what: str) -> int:
    if len(data) < 32 or bytes(data[:4]) != b"PACK":
        raise DecodeError(what, "not a pack (no PACK signature)")
    version, count = struct.unpack(">II", data[4:12])
    if version not in (2, 3):
        raise DecodeError(what, f"pack version {version} unsupported")
    return int(count)


# ---------------------------------------------------------------------------
# Indexes


@dataclass(frozen=True, slots=True)
class PackIndex:
    """Object ids to offsets (and CRC-32s) of one pack, plus the pack's checksum."""

    offsets: dict[bytes, int]
    crcs: dict[bytes, int]
    pack_checksum: bytes


def read_index(data: bytes, what: str = "pack index", algo: str = "sha1") -> PackIndex:
    """Parse a version-2 ``.idx`` file, its checksum and fan-out checked (ids and
    checksums of the object format ``algo``)."""
    h = oid_length(algo)
    if len(data) < 8 + 1024 + 2 * h or data[:4] != _IDX_MAGIC:
        raise DecodeError(what, "not a version-2 pack index")
    if struct.unpack(">I", data[4:8])[0] != 2:
        raise DecodeError(what, "index version is not 2")
    if hasher(algo)(data[:-h]).digest() != data[-h:]:
        raise DecodeError(what, "index checksum mismatch")
    fanout = struct.unpack(">256I", data[8 : 8 + 1024])
    n = fanout[255]
    if any(a > b for a, b in itertools.pairwise(fanout)):
        raise DecodeError(what, "fan-out table not monotonic")
    pos = 8 + 1024
    names_end = pos + h * n
    crc_end = names_end + 4 * n
    off_end = crc_end + 4 * n
    if off_end + 2 * h > len(data):
        raise DecodeError(what, f"too short for {n} objects")
    large_count = (len(data) - 2 * h - off_end) // 8
    if (len(data) - 2 * h - off_end) % 8:
        raise DecodeError(what, "bad large-offset table")
    large = struct.unpack(f">{large_count}Q", data[off_end : off_end + 8 * large_count])
    names = [data[pos + h * i : pos + h * i + h] for i in range(n)]
    if names != sorted(names) or len(set(names)) != n:
        raise DecodeError(what, "object ids not sorted and unique")
    for i, name in enumerate(names):
        first = name[0]
        if not (fanout[first - 1] if first else 0) <= i < fanout[first]:
            raise DecodeError(what, "fan-out table does not match the ids")
    crcs = struct.unpack(f">{n}I", data[names_end:crc_end])
    raw_offsets = struct.unpack(f">{n}I", data[crc_end:off_end])
    offsets = {}
    for name, raw in zip(names, raw_offsets, strict=True):
        off = raw
        if raw & 0x80000000:
            j = raw & 0x7FFFFFFF
            if j >= large_count:
                raise DecodeError(what, "large offset out of range")
            off = large[j]
        offsets[name] = off
    return PackIndex(offsets, dict(zip(names, crcs, strict=True)), data[-2 * h : -h])


def write_index(
    entries: Iterable[tuple[bytes, int, int]], pack_checksum: bytes, algo: str = "sha1"
) -> bytes:
    """A version-2 ``.idx`` for ``(id, offset, crc32)`` entries."""
    ordered = sorted(entries)
    counts = [0] * 256
    for oid, _, _ in ordered:
        counts[oid[0]] += 1
    fanout = list(itertools.accumulate(counts))
    large: list[int] = []
    small = []
    for _, off, _ in ordered:
        if off < 0x80000000:
            small.append(off)
        else:
            small.append(0x80000000 | len(large))
            large.append(off)
    out = bytearray(_IDX_MAGIC + struct.pack(">I", 2) + struct.pack(">256I", *fanout))
    out += b"".join(oid for oid, _, _ in ordered)
    out += struct.pack(f">{len(ordered)}I", *(crc for _, _, crc in ordered))
    out += struct.pack(f">{len(small)}I", *small)
    out += struct.pack(f">{len(large)}Q", *large)
    out += pack_checksum
    out += hasher(algo)(out).digest()
    return bytes(out)


# ---------------------------------------------------------------------------
# Reading


class Pack:
    """One pack, read through its index. Objects are resolved (deltas applied) on
    demand; ids are checked on every read. ``data`` may be a memory map of the
    file (:func:`map_file`), so a large pack is not read into memory."""

    def __init__(
        self, data: bytes | mmap.mmap, index: PackIndex, what: str = "pack", algo: str = "sha1"
    ) -> None:
        self.what = what
        self.algo = algo
        self._oid_len = oid_length(algo)
        _check_header(data, what)
        if data[-self._oid_len :] != index.pack_checksum:
            raise DecodeError(what, "pack checksum does not match its index")
        self._data = data
        self.index = index
        self._cache: dict[int, tuple[ObjectType, bytes]] = {}

    @classmethod
    def from_bytes(cls, data: bytes, what: str = "pack", algo: str = "sha1") -> Pack:
        """A pack without an ``.idx``: indexed by :func:`index_pack` (checks everything)."""
        return cls(data, index_pack(data, what=what, algo=algo), what, algo)

    def __contains__(self, oid: bytes) -> bool:
        return oid in self.index.offsets

    def __len__(self) -> int:
        return len(self.index.offsets)

    def ids(self) -> list[bytes]:
        return list(self.index.offsets)

    def raw_entries(self) -> list[tuple[bytes, bytes, int]] | None:
        """``(id, entry bytes, crc32)`` of every entry, as stored, if none is a delta
        (so each can be copied into another pack as it is); else ``None``."""
        data = self._data
        order = sorted((off, oid) for oid, off in self.index.offsets.items())
        ends = [off for off, _ in order[1:]] + [len(data) - self._oid_len]
        out = []
        for (off, oid), end in zip(order, ends, strict=True):
            if (data[off] >> 4) & 7 not in _TYPES or end <= off:
                return None
            out.append((oid, bytes(data[off:end]), self.index.crcs.get(oid, 0)))
        return out

    def get(self, oid: bytes, lookup: BaseLookup | None = None) -> tuple[ObjectType, bytes] | None:
        off = self.index.offsets.get(oid)
        if off is None:
            return None
        kind, body = self._at(off, lookup, 0)
        actual = hash_object(kind, body, self.algo)
        if actual != oid:
            raise CorruptObject(oid, actual, self.what)
        return kind, body

    def _at(self, off: int, lookup: BaseLookup | None, depth: int) -> tuple[ObjectType, bytes]:
        cached = self._cache.get(off)
        if cached is not None:
            return cached
        if depth > 10_000:
            raise DecodeError(self.what, f"delta chain too long at {off}")
        e = _entry_header(self._data, off, self.what, self._oid_len)
        raw, _ = _inflate(self._data, e.data_start, e.size, self.what)
        if e.type in _TYPES:
            result = (_TYPES[e.type], raw)
        else:
            if e.base_offset is not None:
                base = self._at(e.base_offset, lookup, depth + 1)
            else:
                assert e.base_id is not None
                base_off = self.index.offsets.get(e.base_id)
                found = (
                    self._at(base_off, lookup, depth + 1)
                    if base_off is not None
                    else (lookup(e.base_id) if lookup else None)
                )
                if found is None:
                    raise DecodeError(self.what, f"delta base {e.base_id.hex()} missing")
                base = found
            result = (base[0], apply_delta(base[1], raw, f"{self.what} at {off}"))
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[off] = result
        return result


def map_file(path: str, small: int = 1 << 20) -> bytes | mmap.mmap:
    """A file's bytes: read whole below ``small`` bytes, else mapped read-only (pages
    are read from the disk as they are touched)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < small:
            return f.read()
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


def index_pack(
    data: bytes, lookup: BaseLookup | None = None, what: str = "pack", algo: str = "sha1"
) -> PackIndex:
    """Walk a whole pack, resolve its deltas and compute every id: the pack's index.

    ``lookup`` finds ``REF_DELTA`` bases outside the pack (a thin pack). The trailer
    checksum, the object count and trailing garbage are all checked.
    """
    count = _check_header(data, what)
    h = oid_length(algo)
    if hasher(algo)(memoryview(data)[:-h]).digest() != data[-h:]:
        raise DecodeError(what, "pack checksum mismatch")
    end = len(data) - h
    view = memoryview(data)[:end]
    pos = 12
    raw_entries: list[tuple[int, _Entry, bytes, int]] = []
    for _ in range(count):
        e = _entry_header(view, pos, what, h)
        raw, nxt = _inflate(view, e.data_start, e.size, what)
        raw_entries.append((pos, e, raw, zlib.crc32(view[pos:nxt])))
        pos = nxt
    if pos != end:
        raise DecodeError(what, f"{end - pos} bytes after the last of {count} objects")
    resolved: dict[int, tuple[ObjectType, bytes]] = {}
    by_id: dict[bytes, int] = {}
    crcs: dict[bytes, int] = {}
    pending: list[tuple[int, _Entry, bytes, int]] = []
    all_offsets = {o for o, *_ in raw_entries}
    for off, e, raw, crc in raw_entries:
        if e.type in _TYPES:
            kind = _TYPES[e.type]
            resolved[off] = (kind, raw)
            oid = hash_object(kind, raw, algo)
            by_id[oid] = off
            crcs[oid] = crc
        else:
            pending.append((off, e, raw, crc))
    while pending:
        progress = []
        for item in pending:
            off, e, raw, crc = item
            base: tuple[ObjectType, bytes] | None = None
            if e.base_offset is not None:
                base = resolved.get(e.base_offset)
                if base is None and e.base_offset not in all_offsets:
                    raise DecodeError(what, f"entry at {off}: no entry at its base offset")
            else:
                assert e.base_id is not None
                if e.base_id in by_id:
                    base = resolved[by_id[e.base_id]]
            if base is None:
                continue
            kind, body = base[0], apply_delta(base[1], raw, f"{what} at {off}")
            resolved[off] = (kind, body)
            oid = hash_object(kind, body, algo)
            by_id[oid] = off
            crcs[oid] = crc
            progress.append(item)
        if not progress:
            # The rest need bases from outside the pack, or form a cycle.
            item = pending[0]
            ext = lookup(item[1].base_id) if lookup and item[1].base_id else None
            if ext is None:
                base_name = item[1].base_id.hex() if item[1].base_id else f"offset {item[0]}"
                raise DecodeError(what, f"delta base {base_name} missing")
            off, e, raw, crc = item
            kind, body = ext[0], apply_delta(ext[1], raw, f"{what} at {off}")
            resolved[off] = (kind, body)
            oid = hash_object(kind, body, algo)
            by_id[oid] = off
            crcs[oid] = crc
            progress.append(item)
        done = {id(p) for p in progress}
        pending = [p for p in pending if id(p) not in done]
    return PackIndex(by_id, crcs, bytes(data[-h:]))


# ---------------------------------------------------------------------------
# Writing


def _entry_bytes(kind: int, size: int) -> bytearray:
    c = (kind << 4) | (size & 0x0F)
    size >>= 4
    out = bytearray()
    while size:
        out.append(c | 0x80)
        c = size & 0x7F
        size >>= 7
    out.append(c)
    return out


def write_pack(
    objects: Iterable[tuple[ObjectType, bytes]],
    level: int = 1,
    deltas: bool = False,
    *,
    max_depth: int = 50,
    algo: str = "sha1",
    thin_bases: dict[bytes, tuple[bytes, bytes]] | None = None,
) -> tuple[bytes, list[tuple[bytes, int, int]]]:
    """A version-2 pack of whole objects, each once (and ``OFS_DELTA`` entries against the
    previous object of the same type when ``deltas`` and it saves space, in chains of
    at most ``max_depth``); returns the pack and its ``(id, offset, crc32)`` entries for
    :func:`write_index`. ``thin_bases`` (an object's id to the id and body of an
    object the receiver holds) makes a thin pack: ``REF_DELTA`` entries against
    objects not in the pack."""
    unique: dict[bytes, tuple[ObjectType, bytes]] = {}
    for kind, body in objects:
        unique.setdefault(hash_object(kind, body, algo), (kind, body))
    items = list(unique.items())
    out = bytearray(b"PACK" + struct.pack(">II", 2, len(items)))
    entries = []
    last: dict[ObjectType, tuple[int, bytes, int]] = {}
    for oid, (kind, body) in items:
        off = len(out)
        entry: bytes | None = None
        depth = 0
        outside = thin_bases.get(oid) if thin_bases else None
        if outside is not None and len(body) > 64:
            delta = create_delta(outside[1], body)
            if len(delta) < len(body) // 2:
                entry = bytes(_entry_bytes(REF_DELTA, len(delta))) + outside[0]
                entry += deflate(delta, level)
        prev = last.get(kind) if deltas and entry is None else None
        if prev is not None and len(body) > 64 and prev[2] < max_depth:
            delta = create_delta(prev[1], body)
            if len(delta) < len(body) // 2:
                distance = off - prev[0]
                enc = bytearray([distance & 0x7F])
                distance >>= 7
                while distance:
                    distance -= 1
                    enc.insert(0, 0x80 | (distance & 0x7F))
                    distance >>= 7
                entry = bytes(_entry_bytes(OFS_DELTA, len(delta)) + enc) + deflate(delta, level)
                depth = prev[2] + 1
        if entry is None:
            entry = bytes(_entry_bytes(kind.pack_number, len(body))) + deflate(body, level)
        out += entry
        entries.append((oid, off, zlib.crc32(entry)))
        last[kind] = (off, body, depth)
    out += hasher(algo)(out).digest()
    return bytes(out), entries


def write_hashed_pack(
    objects: Iterable[tuple[bytes, ObjectType, bytes]], level: int = 0, algo: str = "sha1"
) -> tuple[bytes, list[tuple[bytes, int, int]]]:
    """:func:`write_pack` of whole objects whose ids the caller has computed (each
    ``(id, type, body)``, ids distinct): a commit's few new objects are hashed once,
    and stored uncompressed (``level`` 0) unless asked."""
    items = list(objects)
    out = bytearray(b"PACK" + struct.pack(">II", 2, len(items)))
    entries = []
    crc32 = zlib.crc32
    for oid, kind, body in items:
        entry = bytes(_entry_bytes(kind.pack_number, len(body))) + deflate(body, level)
        entries.append((oid, len(out), crc32(entry)))
        out += entry
    out += hasher(algo)(out).digest()
    return bytes(out), entries
