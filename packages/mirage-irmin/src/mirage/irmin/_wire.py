"""The Git pack protocol (version 0), sans-IO: pkt-lines, ref advertisements, fetch
and push requests, and the server's answers.

A pkt-line is four hex digits giving the length (themselves included) and the data;
``0000`` is a flush. A server first advertises its refs (``<hex> <name>``, the first
line followed by ``\\0`` and its capabilities), then a flush. To fetch, the client
sends ``want`` lines (the first with its capabilities), a flush, ``have`` lines and
``done``; the server answers ``ACK``/``NAK`` lines, then the raw pack. To push, the
client sends ``<old> <new> <ref>`` lines (the first with capabilities), a flush and
the pack; with ``report-status`` the server answers ``unpack ok`` and ``ok <ref>`` or
``ng <ref> <reason>`` lines. Every parser raises :class:`DecodeError` on bad input.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import DecodeError, IrminError

__all__ = [
    "Advertisement",
    "PushRejected",
    "encode_fetch",
    "encode_push",
    "parse_advertisement",
    "parse_report",
    "pkt_line",
    "read_pkt_lines",
    "split_fetch_response",
]

FLUSH = b"0000"
ZERO = b"\0" * 20


class PushRejected(IrminError):
    """The remote refused a pushed ref (``ng``) or failed to unpack."""


def pkt_line(data: bytes) -> bytes:
    if len(data) > 65516:
        raise ValueError("pkt-line payload too long")
    return b"%04x%s" % (len(data) + 4, data)


def read_pkt_lines(data: bytes, pos: int = 0, what: str = "pkt-lines") -> tuple[list[bytes], int]:
    """The pkt-lines from ``pos`` up to the first flush; returns them and the offset
    after the flush."""
    lines: list[bytes] = []
    while True:
        head = data[pos : pos + 4]
        if len(head) < 4:
            raise DecodeError(what, "truncated pkt-line")
        if head.strip(b"0123456789abcdef"):
            raise DecodeError(what, f"bad pkt-line length {head!r}")
        size = int(head, 16)
        if size == 0:
            return lines, pos + 4
        if size < 4 or pos + size > len(data):
            raise DecodeError(what, f"bad or truncated pkt-line of length {size}")
        lines.append(data[pos + 4 : pos + size])
        pos += size


def _strip(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\n") else line


def _hex(raw: bytes, what: str) -> bytes:
    if len(raw) != 40 or raw.strip(b"0123456789abcdef"):
        raise DecodeError(what, f"bad object id {raw[:48]!r}")
    return bytes.fromhex(raw.decode())


@dataclass(frozen=True, slots=True)
class Advertisement:
    """A server's ref advertisement: its refs and their object ids, and its capabilities."""

    refs: dict[str, bytes]
    capabilities: frozenset[str]


def parse_advertisement(lines: list[bytes], what: str = "ref advertisement") -> Advertisement:
    refs: dict[str, bytes] = {}
    caps: frozenset[str] = frozenset()
    for i, raw in enumerate(lines):
        line = _strip(raw)
        if i == 0:
            line, _, cap_raw = line.partition(b"\0")
            caps = frozenset(cap_raw.decode("ascii", "replace").split())
        oid_raw, sp, name = line.partition(b" ")
        if not sp:
            raise DecodeError(what, f"bad ref line {line[:80]!r}")
        oid = _hex(oid_raw, what)
        if name == b"capabilities^{}" and oid == ZERO:
            continue  # an empty repository
        try:
            refs[name.decode("utf-8")] = oid
        except UnicodeDecodeError:
            raise DecodeError(what, f"bad ref name {name[:80]!r}") from None
    return Advertisement(refs, caps)


def encode_fetch(wants: list[bytes], haves: list[bytes], caps: list[str]) -> bytes:
    out = []
    for i, w in enumerate(wants):
        extra = (" " + " ".join(caps)) if i == 0 and caps else ""
        out.append(pkt_line(b"want %s%s\n" % (w.hex().encode(), extra.encode())))
    out.append(FLUSH)
    out += [pkt_line(b"have %s\n" % h.hex().encode()) for h in haves]
    out.append(pkt_line(b"done\n"))
    return b"".join(out)


def split_fetch_response(data: bytes, what: str = "fetch response") -> bytes:
    """The pack after the ``ACK``/``NAK`` lines of a fetch response."""
    pos = 0
    while data[pos : pos + 4] != b"PACK":
        head = data[pos : pos + 4]
        if len(head) < 4 or head.strip(b"0123456789abcdef"):
            raise DecodeError(what, f"expected ACK, NAK or a pack, got {head!r}")
        size = int(head, 16)
        line = data[pos + 4 : pos + size]
        if size < 4 or len(line) != size - 4 or not line.startswith((b"ACK", b"NAK")):
            if line.startswith(b"ERR "):
                raise DecodeError(
                    what, f"remote error: {_strip(line[4:]).decode(errors='replace')}"
                )
            raise DecodeError(what, f"unexpected line {line[:80]!r}")
        pos += size
    return data[pos:]


def encode_push(
    updates: list[tuple[bytes | None, bytes | None, str]], pack: bytes, caps: list[str]
) -> bytes:
    out = []
    for i, (old, new, name) in enumerate(updates):
        extra = (b"\0" + " ".join(caps).encode()) if i == 0 else b""
        line = b"%s %s %s" % (
            (old or ZERO).hex().encode(),
            (new or ZERO).hex().encode(),
            name.encode(),
        )
        out.append(pkt_line(line + extra + b"\n"))
    out.append(FLUSH)
    return b"".join(out) + pack


def parse_report(data: bytes, what: str = "push report") -> dict[str, str | None]:
    """Each pushed ref and ``None`` (accepted) or the remote's reason; raises
    :class:`PushRejected` if the remote could not unpack."""
    lines, _ = read_pkt_lines(data, 0, what)
    if not lines or not _strip(lines[0]).startswith(b"unpack "):
        raise DecodeError(what, "no unpack status")
    status = _strip(lines[0])[7:].decode(errors="replace")
    if status != "ok":
        raise PushRejected(f"remote failed to unpack: {status}")
    out: dict[str, str | None] = {}
    for raw in lines[1:]:
        line = _strip(raw).decode("utf-8", "replace")
        if line.startswith("ok "):
            out[line[3:]] = None
        elif line.startswith("ng "):
            name, _, reason = line[3:].partition(" ")
            out[name] = reason or "rejected"
        else:
            raise DecodeError(what, f"bad status line {line[:80]!r}")
    return out
