"""References: names, loose ref files and the ``packed-refs`` file.

A loose ref is ``<40 hex>\\n`` or, for a symbolic ref such as ``HEAD``,
``ref: refs/heads/main\\n``. ``packed-refs`` holds a ``# pack-refs with:`` header,
then ``<hex> <name>`` lines sorted by name, each optionally followed by ``^<hex>``
(the object an annotated tag peels to).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ._errors import DecodeError, RefError

__all__ = [
    "PackedRef",
    "check_ref_name",
    "decode_loose_ref",
    "decode_packed_refs",
    "encode_packed_refs",
]

_BAD_CHARS = frozenset(" ~^:?*[\\\x7f")


@functools.lru_cache(maxsize=4096)
def check_ref_name(name: str) -> str:
    """``name`` if it is a valid full ref name (``refs/heads/x``, ``HEAD``), else
    :class:`RefError` (the rules of ``git check-ref-format``)."""
    if name == "HEAD":
        return name
    parts = name.split("/")
    ok = (
        name.startswith("refs/")
        and len(parts) >= 2
        and not name.endswith(".")
        and ".." not in name
        and "@{" not in name
        and not any(ord(c) < 0x20 or c in _BAD_CHARS for c in name)
        and all(p and not p.startswith(".") and not p.endswith(".lock") for p in parts)
    )
    if not ok:
        raise RefError(f"invalid ref name {name!r}")
    return name


def _hex_id(raw: bytes, what: str) -> bytes:
    if len(raw) not in (40, 64) or raw.strip(b"0123456789abcdef"):
        raise DecodeError(what, f"bad object id {raw[:48]!r}")
    return bytes.fromhex(raw.decode())


def decode_loose_ref(data: bytes, what: str = "ref") -> bytes | str:
    """An object id (20 raw bytes, 32 in SHA-256 repositories) or the target name of
    a symbolic ref."""
    line = data[:-1] if data.endswith(b"\n") else data
    if line.startswith(b"ref: "):
        try:
            return check_ref_name(line[5:].decode("ascii"))
        except (UnicodeDecodeError, RefError):
            raise DecodeError(what, f"bad symbolic ref {line[:80]!r}") from None
    return _hex_id(line, what)


@dataclass(frozen=True, slots=True)
class PackedRef:
    """A ``packed-refs`` entry: ref name, object id and, for an annotated tag, what it peels to."""

    name: str
    oid: bytes
    peeled: bytes | None = None


def decode_packed_refs(data: bytes, what: str = "packed-refs") -> list[PackedRef]:
    refs: list[PackedRef] = []
    for n, line in enumerate(data.split(b"\n"), 1):
        if not line or line.startswith(b"#"):
            continue
        if line.startswith(b"^"):
            if not refs or refs[-1].peeled is not None:
                raise DecodeError(what, f"line {n}: peeled id without a ref")
            refs[-1] = PackedRef(refs[-1].name, refs[-1].oid, _hex_id(line[1:], what))
            continue
        raw_id, sp, raw_name = line.partition(b" ")
        try:
            name = check_ref_name(raw_name.decode("utf-8"))
        except (UnicodeDecodeError, RefError):
            raise DecodeError(what, f"line {n}: bad ref name {raw_name[:80]!r}") from None
        if not sp or name == "HEAD":
            raise DecodeError(what, f"line {n}: bad line")
        refs.append(PackedRef(name, _hex_id(raw_id, what)))
    return refs


def encode_packed_refs(refs: list[PackedRef]) -> bytes:
    out = [b"# pack-refs with: peeled fully-peeled sorted \n"]
    for ref in sorted(refs, key=lambda r: r.name.encode()):
        out.append(b"%s %s\n" % (ref.oid.hex().encode(), ref.name.encode()))
        if ref.peeled is not None:
            out.append(b"^%s\n" % ref.peeled.hex().encode())
    return b"".join(out)
