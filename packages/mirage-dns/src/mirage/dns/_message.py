"""DNS messages: header, question, resource records and EDNS(0), pull and push.

``pull_message(data)`` returns a :class:`Message` or raises :class:`DnsDecodeError`
(carrying FORMERR and, when the header was readable, the id and flags so a server can
answer). ``push_message(msg, limit)`` writes a message with name compression; with a
``limit`` it drops records that do not fit (first the additional section, then the
rest, setting TC) so a UDP answer never exceeds the client's payload size.

The OPT pseudo-record (RFC 6891) is not kept among the additional records: it becomes
:attr:`Message.edns`, and the extended rcode bits are folded into
:attr:`Message.rcode`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ._consts import Class, Opcode, Rcode, RRType, class_to_text, type_to_text
from ._errors import DnsDecodeError
from ._name import Compressor, Name, pull_name, push_name
from ._rdata import Rdata, Unknown, pull_rdata

__all__ = [
    "EdnsOption", "Edns", "Question", "RR", "Message", "pull_message", "push_message",
    "OPT_COOKIE", "OPT_EDE", "OPT_NSID", "OPT_PADDING", "make_query", "make_response",
    "pull_query",
]  # fmt: skip

OPT_NSID = 3
OPT_COOKIE = 10
OPT_PADDING = 12
OPT_EDE = 15

_FLAG_NAMES = ("qr", "aa", "tc", "rd", "ra", "ad", "cd")
_HEADER = struct.Struct("!HHHHHH")
_RR_FIXED = struct.Struct("!HHIH")
_Q_FIXED = struct.Struct("!HH")


@dataclass(frozen=True, slots=True)
class EdnsOption:
    """An EDNS option (RFC 6891): its code and its data."""

    code: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Edns:
    """EDNS(0) parameters of a message (the OPT pseudo-record)."""

    payload: int = 1232
    version: int = 0
    dnssec_ok: bool = False
    z: int = 0
    options: tuple[EdnsOption, ...] = ()
    padding: int = 0
    """When encoding: pad the message to a multiple of this many octets with a
    Padding option (RFC 7830; RFC 8467 block-length padding), 0 for none."""

    def option(self, code: int) -> bytes | None:
        for opt in self.options:
            if opt.code == code:
                return opt.data
        return None

    @property
    def cookie(self) -> tuple[bytes, bytes] | None:
        """(client cookie, server cookie) of RFC 7873, when the option is well formed."""
        data = self.option(OPT_COOKIE)
        if data is None or not (len(data) == 8 or 16 <= len(data) <= 40):
            return None
        return data[:8], data[8:]

    @property
    def extended_errors(self) -> list[tuple[int, str]]:
        """(info code, extra text) of each Extended DNS Error (RFC 8914)."""
        out = []
        for opt in self.options:
            if opt.code == OPT_EDE and len(opt.data) >= 2:
                text = opt.data[2:].decode("utf-8", "replace")
                out.append((int.from_bytes(opt.data[:2], "big"), text))
        return out


@dataclass(frozen=True, slots=True)
class Question:
    """An entry of the question section: name, type and class."""

    name: Name
    rtype: int
    rclass: int = Class.IN

    def to_text(self) -> str:
        return f"{self.name} {class_to_text(self.rclass)} {type_to_text(self.rtype)}"


@dataclass(frozen=True, slots=True)
class RR:
    """A resource record. UPDATE's empty forms (class ANY or NONE, no data) decode
    with ``Unknown(rtype, b"")`` as their data."""

    name: Name
    rtype: int
    rclass: int
    ttl: int
    rdata: Rdata

    def to_text(self) -> str:
        return (
            f"{self.name} {self.ttl} {class_to_text(self.rclass)} {type_to_text(self.rtype)}"
            f" {self.rdata.to_text()}"
        )


@dataclass(frozen=True, slots=True)
class Message:
    """A DNS message: header flags and codes, the four sections, and the EDNS record."""

    id: int = 0
    qr: bool = False
    opcode: int = Opcode.QUERY
    aa: bool = False
    tc: bool = False
    rd: bool = False
    ra: bool = False
    z: bool = False
    ad: bool = False
    cd: bool = False
    rcode: int = Rcode.NOERROR
    question: tuple[Question, ...] = ()
    answer: tuple[RR, ...] = ()
    authority: tuple[RR, ...] = ()
    additional: tuple[RR, ...] = ()
    edns: Edns | None = None

    @property
    def flags(self) -> int:
        return (
            (self.qr << 15) | ((self.opcode & 0xF) << 11) | (self.aa << 10) | (self.tc << 9)
            | (self.rd << 8) | (self.ra << 7) | (self.z << 6) | (self.ad << 5) | (self.cd << 4)
            | (self.rcode & 0xF)
        )  # fmt: skip

    def to_text(self) -> str:
        lines = [
            f";; id {self.id} opcode {self.opcode} rcode {self.rcode}"
            f" flags {' '.join(n for n in _FLAG_NAMES if getattr(self, n))}"
        ]
        if self.edns is not None:
            lines.append(f";; EDNS version {self.edns.version} udp {self.edns.payload}")
        for title, items in (
            ("QUESTION", self.question),
            ("ANSWER", self.answer),
            ("AUTHORITY", self.authority),
            ("ADDITIONAL", self.additional),
        ):
            if items:
                lines.append(f";; {title}")
                lines.extend(item.to_text() for item in items)
        return "\n".join(lines)


def _pull_rr(data: bytes, pos: int) -> tuple[RR, int]:
    name, pos = pull_name(data, pos)
    if pos + 10 > len(data):
        raise DnsDecodeError("truncated resource record")
    rtype, rclass, ttl, rdlen = _RR_FIXED.unpack_from(data, pos)
    pos += 10
    end = pos + rdlen
    if end > len(data):
        raise DnsDecodeError("record data runs past the end of the message")
    if rtype == RRType.OPT:
        rdata: Rdata = _OptData(bytes(data[pos:end]))
    elif rdlen == 0 and rclass in (Class.ANY, Class.NONE):
        rdata = Unknown(rtype, b"")  # UPDATE's prerequisite and delete forms (RFC 2136)
    else:
        rdata = pull_rdata(rtype, data, pos, end)
    return RR(name, rtype, rclass, ttl, rdata), end


@dataclass(frozen=True, slots=True)
class _OptData(Rdata):
    """The RDATA of an OPT pseudo-record, kept raw."""

    raw: bytes


def _edns_from_rr(rr: RR) -> tuple[Edns, int]:
    if rr.name.labels:
        raise DnsDecodeError("OPT record not owned by the root")
    assert isinstance(rr.rdata, _OptData)
    raw = rr.rdata.raw
    options = []
    pos = 0
    while pos < len(raw):
        if pos + 4 > len(raw):
            raise DnsDecodeError("truncated EDNS option")
        code, length = struct.unpack_from("!HH", raw, pos)
        if pos + 4 + length > len(raw):
            raise DnsDecodeError("EDNS option runs past its record")
        options.append(EdnsOption(code, raw[pos + 4 : pos + 4 + length]))
        pos += 4 + length
    ext_rcode = rr.ttl >> 24
    edns = Edns(
        payload=rr.rclass,
        version=(rr.ttl >> 16) & 0xFF,
        dnssec_ok=bool(rr.ttl & 0x8000),
        z=rr.ttl & 0x7FFF,
        options=tuple(options),
    )
    return edns, ext_rcode


def pull_header(data: bytes) -> tuple[int, int]:
    if len(data) < 12:
        raise DnsDecodeError("message shorter than its header")
    return data[0] << 8 | data[1], data[2] << 8 | data[3]


def pull_query(data: bytes) -> Message | None:
    """The common query (one question, at most an OPT record without options) decoded
    without the general machinery; None for anything else (use :func:`pull_message`,
    which gives the same message for what this accepts)."""
    n = len(data)
    if n < 17:
        return None
    ident, flags, qd, an, ns, ar = _HEADER.unpack_from(data, 0)
    if qd != 1 or an or ns or ar > 1 or flags & 0x8000:
        return None
    labels = []
    pos = 12
    while True:
        length = data[pos]
        if length == 0:
            pos += 1
            break
        if length > 63 or pos + 1 + length >= n:
            return None
        labels.append(data[pos + 1 : pos + 1 + length])
        pos += 1 + length
    if pos - 12 > 255 or pos + 4 > n:
        return None
    rtype, rclass = _Q_FIXED.unpack_from(data, pos)
    pos += 4
    edns = None
    if ar:
        if pos + 11 != n or data[pos] != 0:
            return None
        otype, payload, ttl, rdlen = _RR_FIXED.unpack_from(data, pos + 1)
        if otype != RRType.OPT or rdlen or ttl >> 24:
            return None
        edns = Edns(payload, (ttl >> 16) & 0xFF, bool(ttl & 0x8000), ttl & 0x7FFF)
    elif pos != n:
        return None
    return Message(
        ident, False, (flags >> 11) & 0xF, bool(flags & 0x400), bool(flags & 0x200),
        bool(flags & 0x100), bool(flags & 0x80), bool(flags & 0x40), bool(flags & 0x20),
        bool(flags & 0x10), flags & 0xF, (Question(Name(tuple(labels)), rtype, rclass),),
        (), (), (), edns,
    )  # fmt: skip


def pull_message(data: bytes) -> Message:
    """Decode a whole message; trailing bytes are an error."""
    if len(data) < 12:
        raise DnsDecodeError("message shorter than its header")
    ident, flags, qd, an, ns, ar = _HEADER.unpack_from(data, 0)
    try:
        pos = 12
        questions = []
        for _ in range(qd):
            name, pos = pull_name(data, pos)
            if pos + 4 > len(data):
                raise DnsDecodeError("truncated question")
            rtype, rclass = _Q_FIXED.unpack_from(data, pos)
            pos += 4
            questions.append(Question(name, rtype, rclass))
        sections: list[list[RR]] = [[], [], []]
        edns = None
        ext_rcode = 0
        for index, count in enumerate((an, ns, ar)):
            section = sections[index]
            for _ in range(count):
                rr, pos = _pull_rr(data, pos)
                if rr.rtype == RRType.OPT:
                    if index != 2 or edns is not None:
                        raise DnsDecodeError("misplaced or repeated OPT record")
                    edns, ext_rcode = _edns_from_rr(rr)
                else:
                    section.append(rr)
        if pos != len(data):
            raise DnsDecodeError("trailing bytes after the message")
    except DnsDecodeError as exc:
        exc.header = (ident, flags)
        raise
    return Message(
        id=ident,
        qr=bool(flags & 0x8000),
        opcode=(flags >> 11) & 0xF,
        aa=bool(flags & 0x400),
        tc=bool(flags & 0x200),
        rd=bool(flags & 0x100),
        ra=bool(flags & 0x80),
        z=bool(flags & 0x40),
        ad=bool(flags & 0x20),
        cd=bool(flags & 0x10),
        rcode=(ext_rcode << 4) | (flags & 0xF),
        question=tuple(questions),
        answer=tuple(sections[0]),
        authority=tuple(sections[1]),
        additional=tuple(sections[2]),
        edns=edns,
    )


def _push_rr(buf: bytearray, rr: RR, comp: Compressor) -> None:
    push_name(buf, rr.name, comp)
    start = len(buf)
    buf += _RR_FIXED.pack(rr.rtype, rr.rclass, rr.ttl, 0)
    rr.rdata.push(buf, comp)
    rdlen = len(buf) - start - 10
    buf[start + 8 : start + 10] = rdlen.to_bytes(2, "big")


def _push_opt(buf: bytearray, edns: Edns, rcode: int, limit: int | None) -> None:
    ttl = ((rcode >> 4) & 0xFF) << 24 | (edns.version & 0xFF) << 16
    ttl |= (0x8000 if edns.dnssec_ok else 0) | (edns.z & 0x7FFF)
    body = b"".join(struct.pack("!HH", o.code, len(o.data)) + o.data for o in edns.options)
    if edns.padding > 0:  # RFC 7830: a Padding option bringing the size to the block
        total = len(buf) + 11 + len(body) + 4
        size = -total % edns.padding
        if limit is not None and total + size > limit:
            size = max(0, limit - total)
        body += struct.pack("!HH", OPT_PADDING, size) + bytes(size)
    buf += b"\x00" + _RR_FIXED.pack(RRType.OPT, edns.payload, ttl, len(body)) + body


def _opt_size(edns: Edns | None) -> int:
    if edns is None:
        return 0
    return 11 + sum(4 + len(o.data) for o in edns.options) + (4 if edns.padding > 0 else 0)


def push_message(msg: Message, limit: int | None = None) -> bytes:
    """Encode ``msg``; with ``limit``, drop what does not fit and set TC if needed.

    Records are dropped whole: the additional section goes first (without TC, as
    RFC 2181 allows), then, if answer and authority still do not fit, both are cut
    and TC is set.
    """
    buf = bytearray(12)
    comp = Compressor()
    for q in msg.question:
        push_name(buf, q.name, comp)
        buf += _Q_FIXED.pack(q.rtype, q.rclass)
    counts = [len(msg.question), 0, 0, 0]
    reserve = _opt_size(msg.edns)
    tc = msg.tc
    for index, section in enumerate((msg.answer, msg.authority, msg.additional), start=1):
        for rr in section:
            mark = len(buf)
            saved = dict(comp.offsets) if limit is not None else None
            _push_rr(buf, rr, comp)
            if limit is not None and len(buf) + reserve > limit:
                del buf[mark:]
                assert saved is not None
                comp.offsets = saved
                if index < 3:
                    tc = True
                break
            counts[index] += 1
        else:
            continue
        break
    if msg.edns is not None:
        _push_opt(buf, msg.edns, msg.rcode, limit)
        counts[3] += 1
    flags = msg.flags | (0x200 if tc else 0)
    _HEADER.pack_into(buf, 0, msg.id, flags, *counts)
    return bytes(buf)


def make_query(
    name: Name, rtype: int, *, ident: int = 0, rd: bool = True, edns: Edns | None = None
) -> Message:
    return Message(id=ident, rd=rd, question=(Question(name, rtype),), edns=edns)


def make_response(query: Message, **changes: object) -> Message:
    """A response skeleton: the query's id, opcode, RD, CD and question, QR set."""
    fields: dict[str, object] = {
        "id": query.id, "qr": True, "opcode": query.opcode, "rd": query.rd, "cd": query.cd,
        "question": query.question,
    }  # fmt: skip
    fields.update(changes)
    return Message(**fields)  # type: ignore[arg-type]
