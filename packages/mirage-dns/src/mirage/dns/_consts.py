"""Wire constants: record types, classes, opcodes and response codes."""

from __future__ import annotations

import enum

__all__ = ["Class", "Opcode", "Rcode", "RRType", "type_from_text", "type_to_text"]


class RRType(enum.IntEnum):
    A = 1
    NS = 2
    CNAME = 5
    SOA = 6
    PTR = 12
    HINFO = 13
    MX = 15
    TXT = 16
    AAAA = 28
    SRV = 33
    NAPTR = 35
    DNAME = 39
    OPT = 41
    DS = 43
    SSHFP = 44
    RRSIG = 46
    NSEC = 47
    DNSKEY = 48
    NSEC3 = 50
    NSEC3PARAM = 51
    TLSA = 52
    CDS = 59
    CDNSKEY = 60
    SVCB = 64
    HTTPS = 65
    IXFR = 251
    AXFR = 252
    ANY = 255
    CAA = 257


class Class(enum.IntEnum):
    IN = 1
    CH = 3
    HS = 4
    NONE = 254
    ANY = 255


class Opcode(enum.IntEnum):
    QUERY = 0
    IQUERY = 1
    STATUS = 2
    NOTIFY = 4
    UPDATE = 5


class Rcode(enum.IntEnum):
    NOERROR = 0
    FORMERR = 1
    SERVFAIL = 2
    NXDOMAIN = 3
    NOTIMP = 4
    REFUSED = 5
    YXDOMAIN = 6
    YXRRSET = 7
    NXRRSET = 8
    NOTAUTH = 9
    NOTZONE = 10
    BADVERS = 16


_TYPE_BY_NAME = {t.name: int(t) for t in RRType}


def type_to_text(rtype: int) -> str:
    """``RRType`` mnemonic, or ``TYPEnnn`` (RFC 3597) for types we do not name."""
    try:
        return RRType(rtype).name
    except ValueError:
        return f"TYPE{rtype}"


def type_from_text(text: str) -> int:
    """Inverse of :func:`type_to_text`; raises ``ValueError``."""
    upper = text.upper()
    if upper in _TYPE_BY_NAME:
        return _TYPE_BY_NAME[upper]
    if upper.startswith("TYPE") and upper[4:].isdigit():
        value = int(upper[4:])
        if value <= 0xFFFF:
            return value
    raise ValueError(f"unknown record type {text!r}")


def class_to_text(rclass: int) -> str:
    try:
        return Class(rclass).name
    except ValueError:
        return f"CLASS{rclass}"


def class_from_text(text: str) -> int:
    upper = text.upper()
    if upper in Class.__members__:
        return int(Class[upper])
    if upper.startswith("CLASS") and upper[5:].isdigit():
        value = int(upper[5:])
        if value <= 0xFFFF:
            return value
    raise ValueError(f"unknown class {text!r}")
