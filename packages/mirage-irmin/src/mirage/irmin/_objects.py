"""The Git object model and its codecs: blobs, trees, commits, tags, loose objects.

An object is a type and a body; its id is the SHA-1 of ``b"<type> <size>\\0" + body``.
``encode_*`` gives the body Git writes, ``decode_*`` reads one back and raises
:class:`DecodeError` on anything else, whatever the bytes. Text (names, e-mail
addresses, messages) is ``str``, decoded as UTF-8 with ``surrogateescape`` so that any
bytes round-trip exactly.
"""

from __future__ import annotations

import enum
import hashlib
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._errors import DecodeError

__all__ = [
    "Blob",
    "Commit",
    "MODE_EXEC",
    "MODE_FILE",
    "MODE_GITLINK",
    "MODE_LINK",
    "MODE_TREE",
    "GitObject",
    "ObjectType",
    "Person",
    "Tag",
    "Tree",
    "TreeEntry",
    "decode_loose",
    "decode_object",
    "deflate",
    "encode_loose",
    "encode_object",
    "OBJECT_FORMATS",
    "hash_object",
    "hasher",
    "oid_length",
    "tree_sort_key",
]

MODE_FILE = 0o100644
MODE_EXEC = 0o100755
MODE_LINK = 0o120000
MODE_TREE = 0o40000
MODE_GITLINK = 0o160000
KNOWN_MODES = frozenset({MODE_FILE, MODE_EXEC, MODE_LINK, MODE_TREE, MODE_GITLINK})

OID_LEN = 20
_HASHES = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}
OBJECT_FORMATS = ("sha1", "sha256")


def oid_length(algo: str) -> int:
    """The length of raw ids of an object format (``sha1``: 20, ``sha256``: 32)."""
    return 20 if algo == "sha1" else 32


def hasher(algo: str) -> Callable[..., Any]:
    """The hashlib constructor of an object format."""
    try:
        return _HASHES[algo]
    except KeyError:
        raise ValueError(f"unknown object format {algo!r}") from None


class ObjectType(enum.Enum):
    """Object types, with their names in headers and their numbers in packs."""

    COMMIT = "commit"
    TREE = "tree"
    BLOB = "blob"
    TAG = "tag"

    @property
    def pack_number(self) -> int:
        return _PACK_NUMBERS[self]

    @classmethod
    def from_name(cls, name: bytes, what: str) -> ObjectType:
        try:
            return cls(name.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            raise DecodeError(what, f"unknown object type {name[:16]!r}") from None


_PACK_NUMBERS = {ObjectType.COMMIT: 1, ObjectType.TREE: 2, ObjectType.BLOB: 3, ObjectType.TAG: 4}


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def hash_object(kind: ObjectType, body: bytes, algo: str = "sha1") -> bytes:
    """The raw id of an object: 20-byte SHA-1, or 32-byte SHA-256 (``algo``)."""
    h = (hashlib.sha1 if algo == "sha1" else hasher(algo))(
        b"%s %d\0" % (kind.value.encode(), len(body))
    )
    h.update(body)
    digest: bytes = h.digest()
    return digest


# ---------------------------------------------------------------------------
# Objects


@dataclass(frozen=True, slots=True)
class Blob:
    """A Git blob: a file's contents."""

    data: bytes


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """``mode`` (``MODE_FILE``...), ``name`` (one path step) and the entry's id."""

    mode: int
    name: str
    oid: bytes

    @property
    def is_tree(self) -> bool:
        return self.mode == MODE_TREE


def tree_sort_key(name: bytes, is_tree: bool) -> bytes:
    """Git's tree order: byte order of the names, a tree compared as ``name/``."""
    return name + b"/" if is_tree else name


@dataclass(frozen=True, slots=True)
class Tree:
    """A directory: entries in Git's order (``Tree.of`` sorts them)."""

    entries: tuple[TreeEntry, ...]

    @classmethod
    def of(cls, entries: list[TreeEntry] | tuple[TreeEntry, ...]) -> Tree:
        return cls(tuple(sorted(entries, key=lambda e: tree_sort_key(_bytes(e.name), e.is_tree))))

    def get(self, name: str) -> TreeEntry | None:
        for entry in self.entries:
            if entry.name == name:
                return entry
        return None

    def as_dict(self) -> dict[str, TreeEntry]:
        return {e.name: e for e in self.entries}


_TZ = re.compile(rb"[+-][0-9]{4}")


@dataclass(frozen=True, slots=True)
class Person:
    """An author, committer or tagger: ``name <email> time tz``."""

    name: str
    email: str
    time: int
    tz: str = "+0000"

    def encode(self) -> bytes:
        return b"%s <%s> %d %s" % (
            _bytes(self.name),
            _bytes(self.email),
            self.time,
            self.tz.encode(),
        )

    @classmethod
    def decode(cls, raw: bytes, what: str) -> Person:
        lt = raw.find(b" <")
        gt = raw.find(b"> ", lt + 2)
        if lt < 0 or gt < 0 or b"<" in raw[lt + 2 : gt] or b"\n" in raw:
            raise DecodeError(what, f"bad identity line {raw[:80]!r}")
        when, _, tz = raw[gt + 2 :].partition(b" ")
        if not when.isdigit() or not when.isascii() or (len(when) > 1 and when[0:1] == b"0"):
            raise DecodeError(what, f"bad date in identity {raw[:80]!r}")
        if not _TZ.fullmatch(tz):
            raise DecodeError(what, f"bad time zone in identity {raw[:80]!r}")
        return cls(_text(raw[:lt]), _text(raw[lt + 2 : gt]), int(when), tz.decode())


def _check_person(person: Person) -> None:
    for field in (person.name, person.email):
        if any(c in field for c in "<>\n"):
            raise ValueError(f"identity fields may not hold '<', '>' or newlines: {field!r}")
    if person.time < 0 or not _TZ.fullmatch(person.tz.encode()):
        raise ValueError(f"bad time or time zone: {person.time} {person.tz!r}")


@dataclass(frozen=True, slots=True)
class Commit:
    """A Git commit: its tree, parents, author, committer and message."""

    tree: bytes
    parents: tuple[bytes, ...]
    author: Person
    committer: Person
    message: str
    extra: tuple[tuple[str, str], ...] = ()
    """Other headers in order (``encoding``, ``gpgsig``, ``mergetag``...)."""


@dataclass(frozen=True, slots=True)
class Tag:
    """An annotated Git tag: the object it names and its type, the tag name, tagger and message."""

    object: bytes
    type: ObjectType
    name: str
    tagger: Person | None
    message: str


GitObject = Blob | Tree | Commit | Tag


# ---------------------------------------------------------------------------
# Encoding


def _header(key: bytes, value: bytes) -> bytes:
    return key + b" " + value.replace(b"\n", b"\n ") + b"\n"


def encode_object(obj: GitObject) -> tuple[ObjectType, bytes]:
    """The type and body of an object, as Git writes them."""
    if isinstance(obj, Blob):
        return ObjectType.BLOB, obj.data
    if isinstance(obj, Tree):
        return ObjectType.TREE, _encode_tree(obj)
    if isinstance(obj, Commit):
        return ObjectType.COMMIT, _encode_commit(obj)
    return ObjectType.TAG, _encode_tag(obj)


def _encode_tree(tree: Tree) -> bytes:
    parts = []
    for e in tree.entries:
        name = _bytes(e.name)
        if not name or b"/" in name or b"\0" in name or len(e.oid) not in (20, 32):
            raise ValueError(f"bad tree entry {e!r}")
        parts.append(b"%o %s\0%s" % (e.mode, name, e.oid))
    return b"".join(parts)


def _encode_commit(c: Commit) -> bytes:
    _check_person(c.author)
    _check_person(c.committer)
    out = [b"tree %s\n" % c.tree.hex().encode()]
    out += [b"parent %s\n" % p.hex().encode() for p in c.parents]
    out.append(b"author %s\n" % c.author.encode())
    out.append(b"committer %s\n" % c.committer.encode())
    out += [_header(_bytes(k), _bytes(v)) for k, v in c.extra]
    out.append(b"\n")
    out.append(_bytes(c.message))
    return b"".join(out)


def _encode_tag(t: Tag) -> bytes:
    if not t.name or "\n" in t.name:
        raise ValueError(f"bad tag name {t.name!r}")
    out = [
        b"object %s\n" % t.object.hex().encode(),
        b"type %s\n" % t.type.value.encode(),
        b"tag %s\n" % _bytes(t.name),
    ]
    if t.tagger is not None:
        _check_person(t.tagger)
        out.append(b"tagger %s\n" % t.tagger.encode())
    out.append(b"\n")
    out.append(_bytes(t.message))
    return b"".join(out)


# ---------------------------------------------------------------------------
# Decoding


def decode_object(
    kind: ObjectType, body: bytes, what: str = "object", algo: str = "sha1"
) -> GitObject:
    """The object of a type and a body (ids of the object format ``algo``);
    :class:`DecodeError` if the body is malformed."""
    n = oid_length(algo)
    if kind is ObjectType.BLOB:
        return Blob(body)
    if kind is ObjectType.TREE:
        return _decode_tree(body, what, n)
    if kind is ObjectType.COMMIT:
        return _decode_commit(body, what, n)
    return _decode_tag(body, what, n)


def _decode_tree(body: bytes, what: str, oid_len: int = OID_LEN) -> Tree:
    entries = []
    pos, end = 0, len(body)
    while pos < end:
        sp = body.find(b" ", pos, pos + 8)
        if sp <= pos:
            raise DecodeError(what, f"tree entry at {pos}: bad mode")
        mode_raw = body[pos:sp]
        if mode_raw.strip(b"01234567"):
            raise DecodeError(what, f"tree entry at {pos}: bad mode {mode_raw!r}")
        nul = body.find(b"\0", sp + 1)
        if nul < 0 or nul == sp + 1:
            raise DecodeError(what, f"tree entry at {pos}: bad name")
        oid = body[nul + 1 : nul + 1 + oid_len]
        if len(oid) != oid_len:
            raise DecodeError(what, f"tree entry at {pos}: truncated id")
        name = body[sp + 1 : nul]
        if b"/" in name:
            raise DecodeError(what, f"tree entry name {name!r} holds '/'")
        entries.append(TreeEntry(int(mode_raw, 8), _text(name), oid))
        pos = nul + 1 + oid_len
    return Tree(tuple(entries))


def _split_headers(body: bytes, what: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    head, sep, message = body.partition(b"\n\n")
    if not sep:
        if not body.endswith(b"\n"):
            raise DecodeError(what, "no end of headers")
        head, message = body[:-1], b""
    headers: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\n"):
        if line.startswith(b" ") and headers:
            key, value = headers[-1]
            headers[-1] = (key, value + b"\n" + line[1:])
            continue
        key, sp, value = line.partition(b" ")
        if not sp or not key:
            raise DecodeError(what, f"bad header line {line[:40]!r}")
        headers.append((key, value))
    return headers, message


def _oid_hex(raw: bytes, what: str, oid_len: int = OID_LEN) -> bytes:
    if len(raw) != 2 * oid_len or raw.strip(b"0123456789abcdef"):
        raise DecodeError(what, f"bad object id {raw[:48]!r}")
    return bytes.fromhex(raw.decode())


def _decode_commit(body: bytes, what: str, oid_len: int = OID_LEN) -> Commit:
    headers, message = _split_headers(body, what)
    i = 0

    def take(key: bytes) -> bytes:
        nonlocal i
        if i >= len(headers) or headers[i][0] != key:
            raise DecodeError(what, f"missing {key.decode()} header")
        i += 1
        return headers[i - 1][1]

    tree = _oid_hex(take(b"tree"), what, oid_len)
    parents = []
    while i < len(headers) and headers[i][0] == b"parent":
        parents.append(_oid_hex(take(b"parent"), what, oid_len))
    author = Person.decode(take(b"author"), what)
    committer = Person.decode(take(b"committer"), what)
    extra = tuple((_text(k), _text(v)) for k, v in headers[i:])
    return Commit(tree, tuple(parents), author, committer, _text(message), extra)


def _decode_tag(body: bytes, what: str, oid_len: int = OID_LEN) -> Tag:
    headers, message = _split_headers(body, what)
    keys = [k for k, _ in headers]
    if keys[:3] != [b"object", b"type", b"tag"] or keys[3:] not in ([], [b"tagger"]):
        raise DecodeError(what, f"bad tag headers {[k[:16] for k in keys[:6]]}")
    values = [v for _, v in headers]
    tagger = Person.decode(values[3], what) if len(values) == 4 else None
    kind = ObjectType.from_name(values[1], what)
    return Tag(_oid_hex(values[0], what, oid_len), kind, _text(values[2]), tagger, _text(message))


# ---------------------------------------------------------------------------
# Loose objects


def deflate(data: bytes, level: int = 1) -> bytes:
    """``data`` as a zlib stream, with a window no larger than ``data`` needs: zlib's
    default state (a 32 KiB window, 256 KiB of hash tables) costs more to set up
    than compressing a small object does, and the output is the same size (any
    inflater, Git's too, reads a stream made with a smaller window)."""
    n = len(data)
    if level == 0:
        return _stored(data)
    wbits = 9 if n <= 256 else min(15, (n - 1).bit_length())
    memlevel = max(1, min(8, wbits - 7))
    c = zlib.compressobj(level, zlib.DEFLATED, wbits, memlevel)
    return c.compress(data) + c.flush()


def _stored(data: bytes) -> bytes:
    """``data`` as a zlib stream of stored (uncompressed) blocks, made without zlib's
    compressor: for the tiny objects of a commit, setting a compressor up costs more
    than the bytes it would save."""
    out = [b"\x78\x01"]
    n = len(data)
    start = 0
    while True:
        end = min(n, start + 0xFFFF)
        size = end - start
        out.append(struct.pack("<BHH", end == n, size, size ^ 0xFFFF))
        out.append(data[start:end])
        start = end
        if start >= n:
            break
    out.append(struct.pack(">I", zlib.adler32(data)))
    return b"".join(out)


def encode_loose(kind: ObjectType, body: bytes, level: int = 1) -> bytes:
    """The zlib-compressed file Git keeps at ``objects/xx/<38 hex>``."""
    return deflate(b"%s %d\0%s" % (kind.value.encode(), len(body), body), level)


def decode_loose(data: bytes, what: str = "loose object") -> tuple[ObjectType, bytes]:
    """The type and body of a loose object file; :class:`DecodeError` if malformed."""
    try:
        d = zlib.decompressobj()
        raw = d.decompress(data)
        if not d.eof:
            raise DecodeError(what, "truncated zlib stream")
    except zlib.error as e:
        raise DecodeError(what, f"bad zlib stream: {e}") from None
    nul = raw.find(b"\0", 0, 32)
    if nul < 0:
        raise DecodeError(what, "no header")
    name, sp, size = raw[:nul].partition(b" ")
    kind = ObjectType.from_name(name, what)
    if not sp or not size.isdigit() or not size.isascii() or (size[:1] == b"0" and size != b"0"):
        raise DecodeError(what, f"bad size {size!r}")
    body = raw[nul + 1 :]
    if len(body) != int(size):
        raise DecodeError(what, f"size {int(size)} in header, {len(body)} bytes of body")
    return kind, body
