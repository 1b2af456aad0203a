"""mirage-dns: DNS wire format, zone files, an authoritative server and resolvers.

The library works alone (codecs, zone files, the sans-IO server and stub cores); the
asyncio drivers in :mod:`mirage.dns.server` and :mod:`mirage.dns.resolver` run them
over a mirage ``Stack``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._axfr import AxfrReader
    from ._cache import Cache, CachedAnswer
    from ._consts import Class, Opcode, Rcode, RRType, type_from_text, type_to_text
    from ._dnssec import (
        DnssecError,
        SigningKey,
        check_nodata,
        check_nxdomain,
        key_tag,
        make_ds,
        sign_rrset,
        trusted_keys,
        verify_rrset,
    )
    from ._errors import DnsDecodeError, DnsError, ResolveError, ZoneError
    from ._message import (
        RR,
        Edns,
        EdnsOption,
        Message,
        Question,
        make_query,
        make_response,
        pull_message,
        push_message,
    )
    from ._name import ROOT, Name, NameError_
    from ._rdata import (
        AAAA,
        CAA,
        CDNSKEY,
        CDS,
        CNAME,
        DNAME,
        DNSKEY,
        DS,
        HINFO,
        HTTPS,
        MX,
        NAPTR,
        NS,
        NSEC,
        NSEC3,
        NSEC3PARAM,
        PTR,
        RRSIG,
        SOA,
        SRV,
        SSHFP,
        SVCB,
        TLSA,
        TXT,
        A,
        Rdata,
        Unknown,
        rdata_from_text,
    )
    from ._recursive import Delegations, Limits, Recursion
    from ._server import Authority
    from ._signing import ZoneSigner, sign_zone
    from ._stub import StubLookup, Transmit
    from ._tsig import TsigError, TsigKey, parse_key
    from ._update import apply_update
    from ._zone import Lookup, Zone
    from ._zonefile import parse_zone, read_zone, zone_to_text

# Names load on first use (PEP 562), so that importing the plugin module, which sits
# in this package, stays light.
_LAZY = {
    "DnssecError": "._dnssec",
    "SigningKey": "._dnssec",
    "check_nodata": "._dnssec",
    "check_nxdomain": "._dnssec",
    "key_tag": "._dnssec",
    "make_ds": "._dnssec",
    "sign_rrset": "._dnssec",
    "trusted_keys": "._dnssec",
    "verify_rrset": "._dnssec",
    "Delegations": "._recursive",
    "Limits": "._recursive",
    "Recursion": "._recursive",
    "ZoneSigner": "._signing",
    "sign_zone": "._signing",
    "TsigError": "._tsig",
    "TsigKey": "._tsig",
    "parse_key": "._tsig",
    "apply_update": "._update",
    "AxfrReader": "._axfr",
    "Cache": "._cache",
    "CachedAnswer": "._cache",
    "Class": "._consts",
    "Opcode": "._consts",
    "Rcode": "._consts",
    "RRType": "._consts",
    "type_from_text": "._consts",
    "type_to_text": "._consts",
    "DnsDecodeError": "._errors",
    "DnsError": "._errors",
    "ResolveError": "._errors",
    "ZoneError": "._errors",
    "RR": "._message",
    "Edns": "._message",
    "EdnsOption": "._message",
    "Message": "._message",
    "Question": "._message",
    "make_query": "._message",
    "make_response": "._message",
    "pull_message": "._message",
    "push_message": "._message",
    "ROOT": "._name",
    "Name": "._name",
    "NameError_": "._name",
    "AAAA": "._rdata",
    "CAA": "._rdata",
    "CDNSKEY": "._rdata",
    "CDS": "._rdata",
    "CNAME": "._rdata",
    "DNAME": "._rdata",
    "DNSKEY": "._rdata",
    "DS": "._rdata",
    "HINFO": "._rdata",
    "HTTPS": "._rdata",
    "MX": "._rdata",
    "NAPTR": "._rdata",
    "NS": "._rdata",
    "NSEC": "._rdata",
    "NSEC3": "._rdata",
    "NSEC3PARAM": "._rdata",
    "PTR": "._rdata",
    "RRSIG": "._rdata",
    "SOA": "._rdata",
    "SRV": "._rdata",
    "SSHFP": "._rdata",
    "SVCB": "._rdata",
    "TLSA": "._rdata",
    "TXT": "._rdata",
    "A": "._rdata",
    "Rdata": "._rdata",
    "Unknown": "._rdata",
    "rdata_from_text": "._rdata",
    "Authority": "._server",
    "StubLookup": "._stub",
    "Transmit": "._stub",
    "Lookup": "._zone",
    "Zone": "._zone",
    "parse_zone": "._zonefile",
    "read_zone": "._zonefile",
    "zone_to_text": "._zonefile",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mirage.dns' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Class", "Opcode", "Rcode", "RRType", "type_from_text", "type_to_text",
    "DnsDecodeError", "DnsError", "ResolveError", "ZoneError",
    "RR", "Edns", "EdnsOption", "Message", "Question", "make_query", "make_response",
    "pull_message", "push_message", "ROOT", "Name", "NameError_",
    "A", "AAAA", "CAA", "CDNSKEY", "CDS", "CNAME", "DNAME", "DNSKEY", "DS", "HINFO", "HTTPS",
    "MX", "NAPTR", "NS", "NSEC", "NSEC3", "NSEC3PARAM", "PTR", "RRSIG", "SOA", "SRV", "SSHFP",
    "SVCB", "TLSA", "TXT", "Rdata", "Unknown", "rdata_from_text",
    "Authority", "Zone", "Lookup", "parse_zone", "read_zone", "zone_to_text",
    "Cache", "CachedAnswer", "StubLookup", "Transmit", "AxfrReader",
    "TsigError", "TsigKey", "parse_key", "apply_update",
    "Recursion", "Delegations", "Limits",
    "DnssecError", "SigningKey", "ZoneSigner", "sign_zone", "sign_rrset", "verify_rrset",
    "trusted_keys", "make_ds", "key_tag", "check_nxdomain", "check_nodata",
]  # fmt: skip
