"""TSIG (RFC 8945): HMAC signatures over DNS messages, sans-IO.

:func:`sign` appends a TSIG record to an encoded message; :func:`verify` checks the
TSIG record that ends one and returns what a response needs (the key and the MAC).
Verification errors are :class:`TsigError` with the TSIG error code (BADSIG 16,
BADKEY 17, BADTIME 18) and the rcode to answer with (NOTAUTH); a TSIG record that is
not last, or malformed, is a :class:`DnsDecodeError` (FORMERR).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from dataclasses import dataclass

from ._errors import DnsDecodeError, DnsError
from ._name import Name, pull_name

__all__ = ["parse_key", "TsigKey", "TsigError", "Verified", "sign", "verify", "split_tsig", "TSIG"]

TSIG = 250
ANY_CLASS = 255
BADSIG, BADKEY, BADTIME = 16, 17, 18
NOTAUTH = 9

_ALGORITHMS = {
    "hmac-sha256.": hashlib.sha256,
    "hmac-sha384.": hashlib.sha384,
    "hmac-sha512.": hashlib.sha512,
    "hmac-sha224.": hashlib.sha224,
    "hmac-sha1.": hashlib.sha1,
    "hmac-md5.sig-alg.reg.int.": hashlib.md5,
}


HMAC_SHA256 = Name.from_text("hmac-sha256.")


@dataclass(frozen=True, slots=True)
class TsigKey:
    """A TSIG shared secret (RFC 8945): key name, secret and HMAC algorithm."""

    name: Name
    secret: bytes
    algorithm: Name = HMAC_SHA256

    @property
    def supported(self) -> bool:
        return self.algorithm.to_text().lower() in _ALGORITHMS

    def mac(self, data: bytes) -> bytes:
        digest = _ALGORITHMS.get(self.algorithm.to_text().lower())
        if digest is None:
            raise ValueError(f"unsupported TSIG algorithm {self.algorithm}")
        return hmac.new(self.secret, data, digest).digest()


class TsigError(DnsError):
    def __init__(self, message: str, error: int, *, key: TsigKey | None = None) -> None:
        super().__init__(message)
        self.error = error
        self.rcode = NOTAUTH
        self.key = key


@dataclass(frozen=True, slots=True)
class Verified:
    """A message whose TSIG checked out: the key it was signed with and its MAC."""

    key: TsigKey
    mac: bytes


@dataclass(frozen=True, slots=True)
class _Tsig:
    """The RDATA of a TSIG record (RFC 8945 section 4.2)."""

    key_name: Name
    algorithm: Name
    time_signed: int
    fudge: int
    mac: bytes
    original_id: int
    error: int
    other: bytes


def _variables(key_name: Name, algorithm: Name, time_signed: int, *, fudge: int, error: int,
               other: bytes) -> bytes:  # fmt: skip
    return (
        Name(key_name.key).to_wire() + struct.pack("!HI", ANY_CLASS, 0)
        + Name(algorithm.key).to_wire() + time_signed.to_bytes(6, "big")
        + struct.pack("!HHH", fudge, error, len(other)) + other
    )  # fmt: skip


def parse_key(text: str) -> TsigKey:
    """``[algorithm:]name:base64-secret``, as ``nsupdate -y`` takes it."""
    parts = text.split(":")
    if len(parts) == 2:
        parts.insert(0, "hmac-sha256")
    if len(parts) != 3:
        raise ValueError(f"bad TSIG key {text!r}: want [algorithm:]name:secret")
    algorithm, name, secret = parts
    try:
        raw = base64.b64decode(secret, validate=True)
    except binascii.Error:
        raise ValueError("TSIG secret is not base64") from None
    key = TsigKey(Name.from_text(name.rstrip(".") + "."), raw,
                  Name.from_text(algorithm.rstrip(".") + "."))  # fmt: skip
    if not key.supported:
        raise ValueError(f"unsupported TSIG algorithm {algorithm!r}")
    return key


def request_key(data: bytes) -> TsigKey | None:
    """The key name and algorithm a request's TSIG names, without a secret."""
    split = split_tsig(data)
    return None if split is None else TsigKey(split[1].key_name, b"", split[1].algorithm)


def split_tsig(data: bytes) -> tuple[bytes, _Tsig] | None:
    """The message without its final TSIG record (ARCOUNT less one), and the record."""
    if len(data) < 12:
        raise DnsDecodeError("message shorter than its header")
    qd, an, ns, ar = struct.unpack_from("!HHHH", data, 4)
    pos = 12
    for _ in range(qd):
        _, pos = pull_name(data, pos)
        pos += 4
    last_start, last_type = -1, -1
    for index in range(an + ns + ar):
        start = pos
        _, pos = pull_name(data, pos)
        if pos + 10 > len(data):
            raise DnsDecodeError("truncated resource record")
        rtype, _rclass, _ttl, rdlen = struct.unpack_from("!HHIH", data, pos)
        if rtype == TSIG and index != an + ns + ar - 1:
            raise DnsDecodeError("TSIG record is not the last record")
        last_start, last_type = start, rtype
        pos += 10 + rdlen
    if last_type != TSIG or pos != len(data):
        return None
    key_name, pos = pull_name(data, last_start)
    pos += 10
    algorithm, pos = pull_name(data, pos)
    if pos + 10 > len(data):
        raise DnsDecodeError("truncated TSIG record")
    time_signed = int.from_bytes(data[pos : pos + 6], "big")
    fudge, mac_size = struct.unpack_from("!HH", data, pos + 6)
    pos += 10
    mac = data[pos : pos + mac_size]
    pos += mac_size
    if pos + 6 > len(data):
        raise DnsDecodeError("truncated TSIG record")
    original_id, error, other_len = struct.unpack_from("!HHH", data, pos)
    other = data[pos + 6 : pos + 6 + other_len]
    if pos + 6 + other_len != len(data):
        raise DnsDecodeError("TSIG record data has the wrong length")
    body = bytearray(data[:last_start])
    body[0:2] = original_id.to_bytes(2, "big")
    body[10:12] = (ar - 1).to_bytes(2, "big")
    tsig = _Tsig(key_name, algorithm, time_signed, fudge, bytes(mac), original_id, error, other)
    return bytes(body), tsig


def verify(data: bytes, keys: dict[tuple[bytes, ...], TsigKey], now: float,
           *, request_mac: bytes = b"") -> Verified | None:  # fmt: skip
    """Check the TSIG of ``data``; ``None`` when it has none."""
    split = split_tsig(data)
    if split is None:
        return None
    body, tsig = split
    key = keys.get(tsig.key_name.key)
    if key is None or key.algorithm != tsig.algorithm or not key.supported:
        raise TsigError(f"unknown TSIG key {tsig.key_name}", BADKEY)
    prefix = len(request_mac).to_bytes(2, "big") + request_mac if request_mac else b""
    variables = _variables(tsig.key_name, tsig.algorithm, tsig.time_signed, fudge=tsig.fudge,
                           error=tsig.error, other=tsig.other)  # fmt: skip
    expected = key.mac(prefix + body + variables)
    if len(tsig.mac) < 10 or not hmac.compare_digest(expected[: len(tsig.mac)], tsig.mac):
        raise TsigError("TSIG signature does not verify", BADSIG, key=key)
    if len(tsig.mac) < len(expected):
        raise TsigError("truncated TSIG MACs are not accepted", BADSIG, key=key)
    if abs(now - tsig.time_signed) > tsig.fudge:
        raise TsigError("TSIG time outside the fudge", BADTIME, key=key)
    return Verified(key, tsig.mac)


def sign(data: bytes, key: TsigKey, now: float, *, request_mac: bytes = b"", error: int = 0,
         fudge: int = 300, unsigned: bool = False) -> bytes:  # fmt: skip
    """``data`` with a TSIG record appended (an empty MAC when ``unsigned``)."""
    time_signed = int(now)
    other = time_signed.to_bytes(6, "big") if error == BADTIME else b""
    prefix = len(request_mac).to_bytes(2, "big") + request_mac if request_mac else b""
    variables = _variables(key.name, key.algorithm, time_signed, fudge=fudge, error=error,
                           other=other)  # fmt: skip
    mac = b"" if unsigned else key.mac(prefix + data + variables)
    rdata = (
        key.algorithm.to_wire() + time_signed.to_bytes(6, "big")
        + struct.pack("!HH", fudge, len(mac)) + mac + data[:2]
        + struct.pack("!HH", error, len(other)) + other
    )  # fmt: skip
    record = key.name.to_wire() + struct.pack("!HHIH", TSIG, ANY_CLASS, 0, len(rdata)) + rdata
    out = bytearray(data)
    ar = int.from_bytes(out[10:12], "big") + 1
    out[10:12] = ar.to_bytes(2, "big")
    return bytes(out) + record


def sign_next(data: bytes, key: TsigKey, now: float, *, prior: bytes, fudge: int = 300) -> bytes:
    """A later message of a multi-message answer, signed after the ``prior`` signed
    message (RFC 8945 5.3.1): its MAC, this message, and the timers only."""
    split = split_tsig(prior)
    assert split is not None
    prior_mac = split[1].mac
    time_signed = int(now)
    timers = time_signed.to_bytes(6, "big") + fudge.to_bytes(2, "big")
    mac = key.mac(len(prior_mac).to_bytes(2, "big") + prior_mac + data + timers)
    rdata = (
        key.algorithm.to_wire() + time_signed.to_bytes(6, "big")
        + struct.pack("!HH", fudge, len(mac)) + mac + data[:2] + struct.pack("!HH", 0, 0)
    )  # fmt: skip
    record = key.name.to_wire() + struct.pack("!HHIH", TSIG, ANY_CLASS, 0, len(rdata)) + rdata
    out = bytearray(data)
    out[10:12] = (int.from_bytes(out[10:12], "big") + 1).to_bytes(2, "big")
    return bytes(out) + record
