"""Git's wire protocol version 2, sans-IO: the client side of ``ls-refs`` and
``fetch``.

A v2 server first sends its capabilities (``version 2``, then one per line, then a
flush). Each request is ``command=<name>``, capability lines, a delimiter
(``0001``), the command's arguments and a flush. ``ls-refs`` answers ``<hex>
<name>`` lines (with ``symref-target:`` and ``peeled:`` attributes) and a flush.
``fetch`` with ``done`` answers a ``packfile`` section whose pkt-lines are
multiplexed: the first byte is the band (1: pack data, 2: progress, 3: a fatal
error). Every parser raises :class:`DecodeError` on bad input.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import DecodeError
from ._wire import FLUSH, pkt_line

__all__ = [
    "DELIM",
    "RESPONSE_END",
    "Capabilities",
    "decode_packfile",
    "encode_fetch_v2",
    "encode_ls_refs",
    "parse_capabilities",
    "parse_ls_refs",
    "split_packets",
]

DELIM = b"0001"
RESPONSE_END = b"0002"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a v2 server offers: ``commands`` maps a command to its features."""

    commands: dict[str, frozenset[str]]
    object_format: str


def split_packets(data: bytes, what: str = "v2 response") -> list[bytes | int]:
    """Every packet of ``data``: the payload, or ``0`` (flush), ``1`` (delimiter),
    ``2`` (response end)."""
    out: list[bytes | int] = []
    pos = 0
    while pos < len(data):
        head = data[pos : pos + 4]
        if len(head) < 4 or head.strip(b"0123456789abcdef"):
            raise DecodeError(what, f"bad pkt-line length {head!r}")
        size = int(head, 16)
        if size < 4:
            if size == 3:
                raise DecodeError(what, "bad pkt-line length 3")
            out.append(size)
            pos += 4
            continue
        payload = data[pos + 4 : pos + size]
        if len(payload) != size - 4:
            raise DecodeError(what, f"truncated pkt-line of length {size}")
        out.append(payload)
        pos += size
    return out


def _text(line: bytes, what: str) -> str:
    try:
        return line.rstrip(b"\n").decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError(what, f"not UTF-8: {line[:60]!r}") from None


def parse_capabilities(packets: list[bytes | int], what: str = "v2 capabilities") -> Capabilities:
    lines = [p for p in packets if isinstance(p, bytes)]
    if not lines or _text(lines[0], what) != "version 2":
        raise DecodeError(what, "the server does not speak protocol version 2")
    commands: dict[str, frozenset[str]] = {}
    object_format = "sha1"
    for raw in lines[1:]:
        key, _, value = _text(raw, what).partition("=")
        if key == "object-format":
            object_format = value
        commands[key] = frozenset(value.split()) if value else frozenset()
    return Capabilities(commands, object_format)


def _request(command: str, caps: list[str], args: list[str]) -> bytes:
    out = [pkt_line(f"command={command}\n".encode())]
    out += [pkt_line(f"{c}\n".encode()) for c in caps]
    out.append(DELIM)
    out += [pkt_line(f"{a}\n".encode()) for a in args]
    out.append(FLUSH)
    return b"".join(out)


def encode_ls_refs(prefixes: list[str], caps: list[str]) -> bytes:
    args = ["peel", "symrefs"] + [f"ref-prefix {p}" for p in prefixes]
    return _request("ls-refs", caps, args)


def parse_ls_refs(
    packets: list[bytes | int], oid_len: int = 20, what: str = "ls-refs response"
) -> dict[str, bytes]:
    """Ref names to ids (an unborn ``HEAD`` is left out)."""
    refs: dict[str, bytes] = {}
    for p in packets:
        if not isinstance(p, bytes):
            if p == 0:
                break
            raise DecodeError(what, f"unexpected special packet {p}")
        fields = _text(p, what).split(" ")
        if len(fields) < 2:
            raise DecodeError(what, f"bad ref line {p[:80]!r}")
        oid_hex, name = fields[0], fields[1]
        if oid_hex == "unborn":
            continue
        if len(oid_hex) != 2 * oid_len or oid_hex.strip("0123456789abcdef"):
            raise DecodeError(what, f"bad object id {oid_hex[:70]!r}")
        refs[name] = bytes.fromhex(oid_hex)
    return refs


def encode_fetch_v2(wants: list[bytes], haves: list[bytes], caps: list[str]) -> bytes:
    args = [f"want {w.hex()}" for w in wants] + [f"have {h.hex()}" for h in haves]
    return _request("fetch", caps, [*args, "thin-pack", "ofs-delta", "no-progress", "done"])


def decode_packfile(packets: list[bytes | int], what: str = "fetch response") -> bytes:
    """The pack of a v2 fetch response (its ``packfile`` section, demultiplexed)."""
    out = bytearray()
    in_pack = False
    for p in packets:
        if isinstance(p, int):
            if p == 0 and in_pack:
                return bytes(out)
            if p == 0:
                break
            continue  # a delimiter between sections
        if not in_pack:
            line = p.rstrip(b"\n")
            if line == b"packfile":
                in_pack = True
            elif line.startswith(b"ERR "):
                raise DecodeError(what, f"remote error: {line[4:].decode(errors='replace')}")
            continue
        band, data = p[:1], p[1:]
        if band == b"\x01":
            out += data
        elif band == b"\x03":
            raise DecodeError(what, f"remote error: {data.decode(errors='replace').strip()}")
        elif band != b"\x02":
            raise DecodeError(what, f"bad sideband {band!r}")
    raise DecodeError(what, "no complete packfile section")
