"""Record data of every type we know, declared as field tables, and the generic form
of RFC 3597 for the others.

Each class is a frozen dataclass whose attributes are the record's fields in wire
order; ``FIELDS`` names the codec of each. Names inside record data are compressed on
output only for the types of RFC 1035 (RFC 3597 section 4) and decompressed on input
wherever they appear.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

from . import _fields as f
from ._consts import RRType
from ._errors import DnsDecodeError
from ._name import Compressor, Name

__all__ = [
    "Rdata",
    "A",
    "AAAA",
    "NS",
    "CNAME",
    "DNAME",
    "PTR",
    "SOA",
    "MX",
    "TXT",
    "HINFO",
    "SRV",
    "NAPTR",
    "CAA",
    "SSHFP",
    "TLSA",
    "DS",
    "CDS",
    "DNSKEY",
    "CDNSKEY",
    "RRSIG",
    "NSEC",
    "NSEC3",
    "NSEC3PARAM",
    "SVCB",
    "HTTPS",
    "Unknown",
    "RDATA_TYPES",
    "pull_rdata",
    "rdata_from_text",
]


_NAMES: dict[type, tuple[str, ...]] = {}


@dataclass(frozen=True, slots=True)
class Rdata:
    """Base of all record data."""

    rtype: ClassVar[int] = 0
    FIELDS: ClassVar[tuple[f.Field, ...]] = ()

    def push(self, buf: bytearray, comp: Compressor | None = None) -> None:
        for codec, value in zip(self.FIELDS, self._values(), strict=True):
            codec.push(buf, value, comp)

    def to_wire(self) -> bytes:
        buf = bytearray()
        self.push(buf)
        return bytes(buf)

    def _values(self) -> tuple[Any, ...]:
        names = _NAMES.get(type(self))
        if names is None:
            names = _NAMES[type(self)] = tuple(x.name for x in fields(self))
        return tuple(getattr(self, name) for name in names)

    @classmethod
    def pull(cls, data: bytes, pos: int, end: int) -> Rdata:
        values = []
        for codec in cls.FIELDS:
            value, pos = codec.pull(data, pos, end)
            values.append(value)
        if pos != end:
            raise DnsDecodeError(f"{RRType(cls.rtype).name} record data has trailing bytes")
        return cls(*values)

    def to_text(self) -> str:
        return " ".join(
            codec.to_text(value) for codec, value in zip(self.FIELDS, self._values(), strict=True)
        )

    @classmethod
    def from_text(cls, tokens: list[f.Token], origin: Name | None) -> Rdata:
        values = []
        i = 0
        for codec in cls.FIELDS:
            value, i = codec.from_text(tokens, i, origin)
            values.append(value)
        if i != len(tokens):
            raise ValueError(f"unexpected {tokens[i][0]!r} after the record data")
        return cls(*values)


_u8, _u16, _u32 = f.UInt(1), f.UInt(2), f.UInt(4)
_cname, _name = f.NameField(compress=True), f.NameField()


@dataclass(frozen=True, slots=True)
class A(Rdata):
    """An IPv4 address (RFC 1035)."""

    rtype = RRType.A
    FIELDS = (f.IPv4(),)
    address: str


@dataclass(frozen=True, slots=True)
class AAAA(Rdata):
    """An IPv6 address (RFC 3596)."""

    rtype = RRType.AAAA
    FIELDS = (f.IPv6(),)
    address: str


@dataclass(frozen=True, slots=True)
class NS(Rdata):
    """An authoritative name server of the zone (RFC 1035)."""

    rtype = RRType.NS
    FIELDS = (_cname,)
    target: Name


@dataclass(frozen=True, slots=True)
class CNAME(Rdata):
    """The canonical name of an alias (RFC 1035)."""

    rtype = RRType.CNAME
    FIELDS = (_cname,)
    target: Name


@dataclass(frozen=True, slots=True)
class PTR(Rdata):
    """A pointer to another name, as in reverse lookups (RFC 1035)."""

    rtype = RRType.PTR
    FIELDS = (_cname,)
    target: Name


@dataclass(frozen=True, slots=True)
class DNAME(Rdata):
    """A redirection of the subtree below the owner to ``target`` (RFC 6672)."""

    rtype = RRType.DNAME
    FIELDS = (_name,)
    target: Name


@dataclass(frozen=True, slots=True)
class SOA(Rdata):
    """The start of a zone of authority: primary server, contact, serial and timers (RFC 1035)."""

    rtype = RRType.SOA
    FIELDS = (
        _cname, _cname, f.UInt(4, "serial"), f.Ttl("refresh"), f.Ttl("retry"),
        f.Ttl("expire"), f.Ttl("minimum"),
    )  # fmt: skip
    mname: Name
    rname: Name
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int


@dataclass(frozen=True, slots=True)
class MX(Rdata):
    """A mail exchange and its preference (RFC 1035)."""

    rtype = RRType.MX
    FIELDS = (f.UInt(2, "preference"), _cname)
    preference: int
    exchange: Name


@dataclass(frozen=True, slots=True)
class TXT(Rdata):
    """Text strings (RFC 1035)."""

    rtype = RRType.TXT
    FIELDS = (f.CharStrings(),)
    strings: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class HINFO(Rdata):
    """Host information: CPU and operating system (RFC 1035)."""

    rtype = RRType.HINFO
    FIELDS = (f.CharString(), f.CharString())
    cpu: bytes
    os: bytes


@dataclass(frozen=True, slots=True)
class SRV(Rdata):
    """The location of a service: priority, weight, port and target host (RFC 2782)."""

    rtype = RRType.SRV
    FIELDS = (f.UInt(2, "priority"), f.UInt(2, "weight"), f.UInt(2, "port"), _name)
    priority: int
    weight: int
    port: int
    target: Name


@dataclass(frozen=True, slots=True)
class NAPTR(Rdata):
    """A naming authority pointer: a rewrite rule for a name (RFC 3403)."""

    rtype = RRType.NAPTR
    FIELDS = (
        f.UInt(2, "order"), f.UInt(2, "preference"), f.CharString(), f.CharString(),
        f.CharString(), _name,
    )  # fmt: skip
    order: int
    preference: int
    flags: bytes
    services: bytes
    regexp: bytes
    replacement: Name


@dataclass(frozen=True, slots=True)
class CAA(Rdata):
    """A certification authority authorization: a flag, a property tag and its value (RFC 8659)."""

    rtype = RRType.CAA
    FIELDS = (f.UInt(1, "flags"), f.Tag(), f.RestBytes())
    flags: int
    tag: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class SSHFP(Rdata):
    """The fingerprint of an SSH host key (RFC 4255)."""

    rtype = RRType.SSHFP
    FIELDS = (f.UInt(1, "algorithm"), f.UInt(1, "fingerprint type"), f.Hex())
    algorithm: int
    fp_type: int
    fingerprint: bytes


@dataclass(frozen=True, slots=True)
class TLSA(Rdata):
    """A TLS certificate association for DANE (RFC 6698)."""

    rtype = RRType.TLSA
    FIELDS = (f.UInt(1, "usage"), f.UInt(1, "selector"), f.UInt(1, "matching type"), f.Hex())
    usage: int
    selector: int
    matching_type: int
    data: bytes


@dataclass(frozen=True, slots=True)
class DS(Rdata):
    """A delegation signer: the digest of a child zone's DNSKEY (RFC 4034)."""

    rtype = RRType.DS
    FIELDS = (f.UInt(2, "key tag"), f.UInt(1, "algorithm"), f.UInt(1, "digest type"), f.Hex())
    key_tag: int
    algorithm: int
    digest_type: int
    digest: bytes


@dataclass(frozen=True, slots=True)
class CDS(DS):
    """A child's copy of a DS record, for its parent to publish (RFC 7344)."""

    rtype = RRType.CDS


@dataclass(frozen=True, slots=True)
class DNSKEY(Rdata):
    """A public key of the zone for DNSSEC (RFC 4034)."""

    rtype = RRType.DNSKEY
    FIELDS = (f.UInt(2, "flags"), f.UInt(1, "protocol"), f.UInt(1, "algorithm"), f.Base64())
    flags: int
    protocol: int
    algorithm: int
    key: bytes


@dataclass(frozen=True, slots=True)
class CDNSKEY(DNSKEY):
    """A child's copy of a DNSKEY, for its parent to make a DS from (RFC 7344)."""

    rtype = RRType.CDNSKEY


@dataclass(frozen=True, slots=True)
class RRSIG(Rdata):
    """A DNSSEC signature over an RRset (RFC 4034)."""

    rtype = RRType.RRSIG
    FIELDS = (
        f.RRTypeField(), f.UInt(1, "algorithm"), f.UInt(1, "labels"), f.Ttl("original TTL"),
        f.Time("expiration"), f.Time("inception"), f.UInt(2, "key tag"), _name, f.Base64(),
    )  # fmt: skip
    type_covered: int
    algorithm: int
    labels: int
    original_ttl: int
    expiration: int
    inception: int
    key_tag: int
    signer: Name
    signature: bytes


@dataclass(frozen=True, slots=True)
class NSEC(Rdata):
    """The next owner name and the types at this one, for authenticated denial (RFC 4034)."""

    rtype = RRType.NSEC
    FIELDS = (_name, f.TypeBitmap())
    next_name: Name
    types: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class NSEC3(Rdata):
    """The next hashed owner name and the types at this one, for hashed denial (RFC 5155)."""

    rtype = RRType.NSEC3
    FIELDS = (
        f.UInt(1, "hash algorithm"), f.UInt(1, "flags"), f.UInt(2, "iterations"), f.ShortHex(),
        f.Base32Hash(), f.TypeBitmap(),
    )  # fmt: skip
    algorithm: int
    flags: int
    iterations: int
    salt: bytes
    next_hash: bytes
    types: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class NSEC3PARAM(Rdata):
    """The NSEC3 hash parameters of the zone (RFC 5155)."""

    rtype = RRType.NSEC3PARAM
    FIELDS = (f.UInt(1, "hash algorithm"), f.UInt(1, "flags"), f.UInt(2, "iterations"),
              f.ShortHex())  # fmt: skip
    algorithm: int
    flags: int
    iterations: int
    salt: bytes


@dataclass(frozen=True, slots=True)
class SVCB(Rdata):
    """Service binding: a priority, a target name and service parameters (RFC 9460)."""

    rtype = RRType.SVCB
    FIELDS = (f.UInt(2, "priority"), _name, f.SvcParams())
    priority: int
    target: Name
    params: tuple[tuple[int, bytes], ...]


@dataclass(frozen=True, slots=True)
class HTTPS(SVCB):
    """Service binding for HTTPS (RFC 9460)."""

    rtype = RRType.HTTPS


@dataclass(frozen=True, slots=True)
class Unknown(Rdata):
    """Record data of a type we do not know, kept as bytes (RFC 3597)."""

    type_code: int
    data: bytes

    def push(self, buf: bytearray, comp: Compressor | None = None) -> None:
        buf += self.data

    def to_text(self) -> str:
        return generic_text(self.data)


def generic_text(data: bytes) -> str:
    return f"\\# {len(data)} {data.hex().upper()}" if data else "\\# 0"


RDATA_TYPES: dict[int, type[Rdata]] = {
    cls.rtype: cls
    for cls in (
        A, AAAA, NS, CNAME, DNAME, PTR, SOA, MX, TXT, HINFO, SRV, NAPTR, CAA, SSHFP, TLSA, DS,
        CDS, DNSKEY, CDNSKEY, RRSIG, NSEC, NSEC3, NSEC3PARAM, SVCB, HTTPS,
    )
}  # fmt: skip


def pull_rdata(rtype: int, data: bytes, pos: int, end: int) -> Rdata:
    cls = RDATA_TYPES.get(rtype)
    if cls is None:
        return Unknown(rtype, bytes(data[pos:end]))
    return cls.pull(data, pos, end)


def rdata_from_text(rtype: int, tokens: list[f.Token], origin: Name | None) -> Rdata:
    """Parse record data; ``\\# len hex`` (RFC 3597) is accepted for every type."""
    if tokens and tokens[0] == ("\\#", False):
        if len(tokens) < 2 or not tokens[1][0].isdigit():
            raise ValueError("generic record data needs a length")
        length = int(tokens[1][0])
        try:
            data = bytes.fromhex("".join(t for t, _ in tokens[2:]))
        except ValueError:
            raise ValueError("bad hexadecimal in generic record data") from None
        if len(data) != length:
            raise ValueError(f"generic record data is {len(data)} octets, not {length}")
        try:
            return pull_rdata(rtype, data, 0, len(data))
        except DnsDecodeError as exc:
            raise ValueError(f"generic record data does not decode: {exc}") from None
    cls = RDATA_TYPES.get(rtype)
    if cls is None:
        raise ValueError("record data of an unknown type must use the \\# form")
    return cls.from_text(tokens, origin)
