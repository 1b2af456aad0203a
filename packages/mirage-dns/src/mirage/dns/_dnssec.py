"""DNSSEC (RFC 4033-4035, 5155, 6840): signatures, keys, DS and denial of existence.

Pure functions over records, with explicit time (``now`` in seconds since the epoch,
compared with RFC 1982 serial arithmetic against the RRSIG validity period):

- :func:`signed_data` builds what an RRSIG covers: the RRSIG fields without the
  signature, then the RRset in canonical form and order (RFC 4034 section 6), the
  owner rewritten to the wildcard when the RRSIG's label count says the RRset was
  synthesised; :func:`verify_rrset` checks an RRset against RRSIGs and keys, and
  :func:`sign_rrset` makes an RRSIG with a :class:`SigningKey`.
- :func:`trusted_keys` turns a DNSKEY RRset into the keys to trust, given DS
  records (from the parent or a configured trust anchor) or anchor DNSKEYs.
- :func:`check_nxdomain`, :func:`check_nodata` prove a negative answer from its
  NSEC or NSEC3 records (closest encloser proofs for NSEC3, RFC 5155 section 8).

Algorithms: RSASHA1 (5, 7), RSASHA256 (8), RSASHA512 (10), ECDSAP256SHA256 (13),
ECDSAP384SHA384 (14), ED25519 (15), ED448 (16), through ``cryptography``. Every
failure is a :class:`DnssecError` carrying its Extended DNS Error code (RFC 8914).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from ._consts import RRType
from ._errors import DnsError
from ._message import RR
from ._name import Name
from ._rdata import DNSKEY, DS, NSEC, NSEC3, RRSIG, Rdata

__all__ = [
    "DnssecError", "SigningKey", "key_tag", "make_ds", "signed_data", "verify_rrset",
    "sign_rrset", "trusted_keys", "canonical_order", "nsec3_hash", "check_nxdomain",
    "check_nodata", "check_expansion", "EDE_BOGUS", "EDE_EXPIRED", "EDE_NOT_YET_VALID",
    "EDE_DNSKEY_MISSING", "EDE_RRSIGS_MISSING", "EDE_NSEC_MISSING", "EDE_UNSUPPORTED_ALGORITHM",
    "EDE_UNSUPPORTED_DIGEST",
]  # fmt: skip

# Extended DNS Error info codes (RFC 8914 section 4)
EDE_UNSUPPORTED_ALGORITHM = 1
EDE_UNSUPPORTED_DIGEST = 2
EDE_BOGUS = 6
EDE_EXPIRED = 7
EDE_NOT_YET_VALID = 8
EDE_DNSKEY_MISSING = 9
EDE_RRSIGS_MISSING = 10
EDE_NSEC_MISSING = 12

ZONE_KEY = 0x0100
SEP = 0x0001

_HASHES = {5: "sha1", 7: "sha1", 8: "sha256", 10: "sha512", 13: "sha256", 14: "sha384"}
_DIGESTS = {1: "sha1", 2: "sha256", 4: "sha384"}
# RFC 4034 section 6.2 (with RFC 6840 section 5.1: not NSEC): names inside these are
# lowercased in the canonical form.
_LOWERCASE_TYPES = frozenset(
    {2, 3, 4, 5, 6, 7, 8, 9, 12, 14, 15, 17, 18, 21, 24, 26, 30, 35, 36, 33, 39, 38, 46}
)


class DnssecError(DnsError):
    """A record set, key or proof that does not validate; ``ede`` is its RFC 8914 code."""

    def __init__(self, message: str, ede: int = EDE_BOGUS) -> None:
        super().__init__(message)
        self.ede = ede


# -- canonical forms ------------------------------------------------------------------


def _lower(name: Name) -> Name:
    return Name(name.key)


def canonical_rdata(rdata: Rdata) -> bytes:
    if rdata.rtype in _LOWERCASE_TYPES:
        changes: dict[str, Any] = {}
        for fld in fields(rdata):
            value = getattr(rdata, fld.name)
            if isinstance(value, Name):
                changes[fld.name] = _lower(value)
        if changes:
            rdata = replace(rdata, **changes)
    return rdata.to_wire()


def canonical_order(name: Name) -> tuple[bytes, ...]:
    """A sort key giving the canonical name order of RFC 4034 section 6.1."""
    return tuple(reversed(name.key))


def _rrsig_header(sig: RRSIG) -> bytes:
    return (
        sig.type_covered.to_bytes(2, "big") + bytes((sig.algorithm, sig.labels))
        + sig.original_ttl.to_bytes(4, "big") + sig.expiration.to_bytes(4, "big")
        + sig.inception.to_bytes(4, "big") + sig.key_tag.to_bytes(2, "big")
        + _lower(sig.signer).to_wire()
    )  # fmt: skip


def _label_count(name: Name) -> int:
    labels = name.labels
    return len(labels) - 1 if labels and labels[0] == b"*" else len(labels)


def signed_data(sig: RRSIG, rrset: Sequence[RR]) -> bytes:
    """The octets an RRSIG signs (RFC 4034 section 3.1.8.1)."""
    owner = rrset[0].name
    if sig.labels < len(owner.labels):  # synthesised from a wildcard
        owner = Name((b"*", *owner.labels[len(owner.labels) - sig.labels :]))
    head = _lower(owner).to_wire()
    datas = sorted({canonical_rdata(rr.rdata) for rr in rrset})
    out = bytearray(_rrsig_header(sig))
    for data in datas:
        out += head
        out += rrset[0].rtype.to_bytes(2, "big") + rrset[0].rclass.to_bytes(2, "big")
        out += sig.original_ttl.to_bytes(4, "big") + len(data).to_bytes(2, "big") + data
    return bytes(out)


# -- keys, DS --------------------------------------------------------------------------


def key_tag(key: DNSKEY) -> int:
    """The key tag of RFC 4034 appendix B."""
    data = key.to_wire()
    total = 0
    for i, byte in enumerate(data):
        total += byte if i & 1 else byte << 8
    total += (total >> 16) & 0xFFFF
    return total & 0xFFFF


def make_ds(owner: Name, key: DNSKEY, digest_type: int = 2) -> DS:
    name = _DIGESTS.get(digest_type)
    if name is None:
        raise DnssecError(f"unsupported DS digest type {digest_type}", EDE_UNSUPPORTED_DIGEST)
    digest = hashlib.new(name, _lower(owner).to_wire() + key.to_wire()).digest()
    return DS(key_tag(key), key.algorithm, digest_type, digest)


def _public_key(key: DNSKEY) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

    alg, raw = key.algorithm, key.key
    try:
        if alg in (5, 7, 8, 10):
            if not raw:
                raise ValueError("empty RSA key")
            if raw[0] == 0:
                elen, pos = int.from_bytes(raw[1:3], "big"), 3
            else:
                elen, pos = raw[0], 1
            e = int.from_bytes(raw[pos : pos + elen], "big")
            n = int.from_bytes(raw[pos + elen :], "big")
            return rsa.RSAPublicNumbers(e, n).public_key()
        if alg in (13, 14):
            size = 32 if alg == 13 else 48
            if len(raw) != 2 * size:
                raise ValueError("bad ECDSA key length")
            curve = ec.SECP256R1() if alg == 13 else ec.SECP384R1()
            x, y = int.from_bytes(raw[:size], "big"), int.from_bytes(raw[size:], "big")
            return ec.EllipticCurvePublicNumbers(x, y, curve).public_key()
        if alg == 15:
            return ed25519.Ed25519PublicKey.from_public_bytes(raw)
        if alg == 16:
            return ed448.Ed448PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise DnssecError(f"bad DNSKEY (algorithm {alg}): {exc}") from None
    raise DnssecError(f"unsupported DNSSEC algorithm {alg}", EDE_UNSUPPORTED_ALGORITHM)


def _verify(key: DNSKEY, signature: bytes, data: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    public = _public_key(key)
    alg = key.algorithm
    try:
        if alg in (5, 7, 8, 10):
            digest = {"sha1": hashes.SHA1(), "sha256": hashes.SHA256(), "sha512": hashes.SHA512()}
            public.verify(signature, data, padding.PKCS1v15(), digest[_HASHES[alg]])
        elif alg in (13, 14):
            size = 32 if alg == 13 else 48
            if len(signature) != 2 * size:
                return False
            der = encode_dss_signature(int.from_bytes(signature[:size], "big"),
                                       int.from_bytes(signature[size:], "big"))  # fmt: skip
            algo = hashes.SHA256() if alg == 13 else hashes.SHA384()
            public.verify(der, data, ec.ECDSA(algo))
        else:
            public.verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


def _serial_le(a: int, b: int) -> bool:
    """a <= b in RFC 1982 arithmetic on 32 bits."""
    return a == b or (0 < ((b - a) & 0xFFFFFFFF) < 0x80000000)


def verify_rrset(
    rrset: Sequence[RR], rrsigs: Iterable[RR], keys: Iterable[DNSKEY], now: int
) -> RRSIG:
    """Check ``rrset`` against its RRSIGs with ``keys``; the RRSIG that validated it.

    Raises :class:`DnssecError` naming the first reason when no RRSIG validates.
    """
    if not rrset:
        raise DnssecError("empty RRset")
    owner, rtype, rclass = rrset[0].name, rrset[0].rtype, rrset[0].rclass
    sigs = [rr.rdata for rr in rrsigs if isinstance(rr.rdata, RRSIG) and rr.name == owner
            and rr.rdata.type_covered == rtype and rr.rclass == rclass]  # fmt: skip
    if not sigs:
        raise DnssecError(f"no RRSIG for {owner} type {rtype}", EDE_RRSIGS_MISSING)
    key_list = list(keys)
    problem: DnssecError | None = None
    now32 = int(now) & 0xFFFFFFFF
    for sig in sigs:
        if not owner.is_subdomain(sig.signer) or sig.labels > _label_count(owner):
            problem = problem or DnssecError(f"RRSIG of {owner} by {sig.signer} does not fit")
            continue
        if not _serial_le(sig.inception, now32):
            problem = problem or DnssecError(f"RRSIG of {owner} not yet valid", EDE_NOT_YET_VALID)
            continue
        if not _serial_le(now32, sig.expiration):
            problem = problem or DnssecError(f"RRSIG of {owner} expired", EDE_EXPIRED)
            continue
        candidates = [
            k for k in key_list
            if k.algorithm == sig.algorithm and key_tag(k) == sig.key_tag
            and k.flags & ZONE_KEY and k.protocol == 3
        ]  # fmt: skip
        if not candidates:
            problem = problem or DnssecError(
                f"no DNSKEY {sig.key_tag} of {sig.signer} for {owner}", EDE_DNSKEY_MISSING
            )
            continue
        data = signed_data(sig, rrset)
        for key in candidates:
            try:
                if _verify(key, sig.signature, data):
                    return sig
            except DnssecError as exc:
                problem = problem or exc
                continue
        problem = problem or DnssecError(f"bad signature over {owner}")
    assert problem is not None
    raise problem


def trusted_keys(
    dnskeys: Sequence[RR],
    rrsigs: Iterable[RR],
    now: int,
    *,
    ds: Iterable[DS] = (),
    anchors: Iterable[DNSKEY] = (),
) -> list[DNSKEY]:
    """The zone's keys, once its DNSKEY RRset is signed by a key a DS (or anchor) names."""
    keys = [rr.rdata for rr in dnskeys if isinstance(rr.rdata, DNSKEY)]
    if not keys:
        raise DnssecError("no DNSKEY records", EDE_DNSKEY_MISSING)
    owner = dnskeys[0].name
    entry: list[DNSKEY] = [k for k in keys if k in set(anchors)]
    unsupported = True
    for d in ds:
        if d.digest_type not in _DIGESTS:
            continue
        unsupported = False
        for k in keys:
            if (key_tag(k), k.algorithm) == (d.key_tag, d.algorithm) and (
                make_ds(owner, k, d.digest_type).digest == d.digest
            ):
                entry.append(k)
    if not entry:
        code = EDE_UNSUPPORTED_DIGEST if unsupported and list(ds) else EDE_DNSKEY_MISSING
        raise DnssecError(f"no DNSKEY of {owner} matches its DS or trust anchor", code)
    verify_rrset(dnskeys, rrsigs, entry, now)
    return keys


# -- signing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """A private key with its DNSKEY (flags 257 for a KSK/CSK, 256 for a ZSK)."""

    dnskey: DNSKEY
    private: Any

    @property
    def tag(self) -> int:
        return key_tag(self.dnskey)

    @classmethod
    def generate(cls, algorithm: int = 13, flags: int = ZONE_KEY | SEP) -> SigningKey:
        from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

        private: Any
        if algorithm in (8, 10):
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif algorithm == 13:
            private = ec.generate_private_key(ec.SECP256R1())
        elif algorithm == 14:
            private = ec.generate_private_key(ec.SECP384R1())
        elif algorithm == 15:
            private = ed25519.Ed25519PrivateKey.generate()
        elif algorithm == 16:
            private = ed448.Ed448PrivateKey.generate()
        else:
            raise DnssecError(f"cannot sign with algorithm {algorithm}", EDE_UNSUPPORTED_ALGORITHM)
        return cls.from_private(private, algorithm, flags)

    @classmethod
    def from_private(cls, private: Any, algorithm: int, flags: int) -> SigningKey:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        public = private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            nums = public.public_numbers()
            e = nums.e.to_bytes((nums.e.bit_length() + 7) // 8, "big")
            head = bytes([len(e)]) if len(e) < 256 else b"\x00" + len(e).to_bytes(2, "big")
            raw = head + e + nums.n.to_bytes((nums.n.bit_length() + 7) // 8, "big")
        elif isinstance(public, ec.EllipticCurvePublicKey):
            size = 32 if algorithm == 13 else 48
            pn = public.public_numbers()
            raw = pn.x.to_bytes(size, "big") + pn.y.to_bytes(size, "big")
        else:
            raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cls(DNSKEY(flags, 3, algorithm, raw), private)

    @classmethod
    def from_bind(cls, private_text: str, flags: int = ZONE_KEY | SEP) -> SigningKey:
        """A key from the ``K*.private`` file that ``dnssec-keygen`` writes."""
        from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

        values: dict[str, str] = {}
        for line in private_text.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                values[key.strip()] = value.strip()
        try:
            algorithm = int(values["Algorithm"].split()[0])

            def num(field: str) -> int:
                return int.from_bytes(base64.b64decode(values[field]), "big")

            private: Any
            if algorithm in (5, 7, 8, 10):
                public = rsa.RSAPublicNumbers(num("PublicExponent"), num("Modulus"))
                private = rsa.RSAPrivateNumbers(
                    num("Prime1"), num("Prime2"), num("PrivateExponent"), num("Exponent1"),
                    num("Exponent2"), num("Coefficient"), public,
                ).private_key()  # fmt: skip
            elif algorithm in (13, 14):
                curve = ec.SECP256R1() if algorithm == 13 else ec.SECP384R1()
                private = ec.derive_private_key(num("PrivateKey"), curve)
            elif algorithm == 15:
                raw = base64.b64decode(values["PrivateKey"])
                private = ed25519.Ed25519PrivateKey.from_private_bytes(raw)
            elif algorithm == 16:
                raw = base64.b64decode(values["PrivateKey"])
                private = ed448.Ed448PrivateKey.from_private_bytes(raw)
            else:
                raise DnssecError(f"cannot sign with algorithm {algorithm}",
                                  EDE_UNSUPPORTED_ALGORITHM)  # fmt: skip
        except (KeyError, ValueError, IndexError) as exc:
            raise DnssecError(f"bad private key file: {exc}") from None
        return cls.from_private(private, algorithm, flags)

    @classmethod
    def from_bind_files(cls, private_path: str | Path) -> tuple[Name, SigningKey]:
        """The zone and key of a ``K<zone>+<alg>+<tag>.private`` file and its ``.key``."""
        from ._zonefile import parse_zone

        private = Path(private_path)
        public = private.with_suffix(".key")
        try:
            records = parse_zone("$TTL 3600\n" + public.read_text(), Name(()))
            text = private.read_text()
        except OSError as exc:
            raise DnssecError(f"cannot read the key {private}: {exc}") from None
        keys = [rr for rr in records if isinstance(rr.rdata, DNSKEY)]
        if len(keys) != 1:
            raise DnssecError(f"{public} holds no single DNSKEY")
        dnskey = keys[0].rdata
        assert isinstance(dnskey, DNSKEY)
        key = cls.from_bind(text, dnskey.flags)
        if key.dnskey != dnskey:
            raise DnssecError(f"{private} and {public} do not hold the same key")
        return keys[0].name, key

    def sign(self, data: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        alg = self.dnskey.algorithm
        if alg in (5, 7, 8, 10):
            digest = {"sha1": hashes.SHA1(), "sha256": hashes.SHA256(), "sha512": hashes.SHA512()}
            return bytes(self.private.sign(data, padding.PKCS1v15(), digest[_HASHES[alg]]))
        if alg in (13, 14):
            size = 32 if alg == 13 else 48
            algo = hashes.SHA256() if alg == 13 else hashes.SHA384()
            r, s = decode_dss_signature(self.private.sign(data, ec.ECDSA(algo)))
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        return bytes(self.private.sign(data))


def sign_rrset(
    rrset: Sequence[RR], key: SigningKey, signer: Name, inception: int, expiration: int
) -> RR:
    """An RRSIG over ``rrset`` by ``key`` of zone ``signer``, valid between the times."""
    first = rrset[0]
    template = RRSIG(
        first.rtype, key.dnskey.algorithm, _label_count(first.name), first.ttl,
        expiration & 0xFFFFFFFF, inception & 0xFFFFFFFF, key.tag, signer, b"",
    )  # fmt: skip
    signature = key.sign(signed_data(template, rrset))
    return RR(first.name, RRType.RRSIG, first.rclass, first.ttl, replace(template,
              signature=signature))  # fmt: skip


# -- denial of existence --------------------------------------------------------------------


def _covers(owner: Name, next_name: Name, name: Name) -> bool:
    """``owner < name < next`` in canonical order; the last NSEC wraps to the apex."""
    o, n, x = canonical_order(owner), canonical_order(next_name), canonical_order(name)
    if o < n:
        return o < x < n
    return x > o and name.is_subdomain(next_name)


def nsec3_hash(name: Name, salt: bytes, iterations: int) -> bytes:
    data = hashlib.sha1(_lower(name).to_wire() + salt).digest()
    for _ in range(iterations):
        data = hashlib.sha1(data + salt).digest()
    return data


def _b32(data: bytes) -> bytes:
    return base64.b32hexencode(data).lower().rstrip(b"=")


@dataclass(frozen=True, slots=True)
class _Nsec3:
    """An NSEC3 record of a response: its owner hash, its zone and its RDATA."""

    owner_hash: bytes
    zone: Name
    rdata: NSEC3


def _nsec3s(records: Iterable[RR]) -> list[_Nsec3]:
    out = []
    for rr in records:
        if isinstance(rr.rdata, NSEC3) and rr.rdata.algorithm == 1 and rr.name.labels:
            try:
                owner_hash = base64.b32hexdecode(rr.name.labels[0].upper() + b"=" * (
                    (8 - len(rr.name.labels[0]) % 8) % 8))  # fmt: skip
            except ValueError:
                continue
            out.append(_Nsec3(owner_hash, rr.name.parent(), rr.rdata))
    return out


def _nsec3_match(items: list[_Nsec3], name: Name) -> _Nsec3 | None:
    for item in items:
        h = nsec3_hash(name, item.rdata.salt, item.rdata.iterations)
        if h == item.owner_hash and name.is_subdomain(item.zone):
            return item
    return None


def _nsec3_cover(items: list[_Nsec3], name: Name) -> _Nsec3 | None:
    for item in items:
        if not name.is_subdomain(item.zone):
            continue
        h = nsec3_hash(name, item.rdata.salt, item.rdata.iterations)
        o, n = item.owner_hash, item.rdata.next_hash
        if (o < h < n) if o < n else (h > o or h < n):
            return item
    return None


def _closest_encloser_nsec3(items: list[_Nsec3], qname: Name) -> tuple[Name, _Nsec3]:
    """RFC 5155 section 8.3: the closest encloser and the NSEC3 covering the next closer."""
    if not items:
        raise DnssecError(f"no NSEC3 records to deny {qname}", EDE_NSEC_MISSING)
    zone = items[0].zone
    name = qname
    while len(name.labels) > len(zone.labels):
        parent = name.parent()
        if _nsec3_match(items, parent) is not None:
            cover = _nsec3_cover(items, name)
            if cover is None:
                raise DnssecError(f"no NSEC3 covers the next closer name {name}", EDE_NSEC_MISSING)
            return parent, cover
        name = parent
    raise DnssecError(f"no closest encloser proof for {qname}", EDE_NSEC_MISSING)


def check_nxdomain(qname: Name, records: Iterable[RR]) -> None:
    """Raise unless the (already verified) NSEC/NSEC3 ``records`` prove qname absent."""
    recs = list(records)
    nsecs = [(rr.name, rr.rdata) for rr in recs if isinstance(rr.rdata, NSEC)]
    if nsecs:
        covering = [(o, d) for o, d in nsecs if _covers(o, d.next_name, qname)]
        if not covering:
            raise DnssecError(f"no NSEC covers {qname}", EDE_NSEC_MISSING)
        owner, data = covering[0]
        # the closest encloser: the longer common ancestor with either end of the span
        encloser = max(_common(qname, owner), _common(qname, data.next_name),
                       key=lambda n: len(n.labels))  # fmt: skip
        wildcard = Name((b"*", *encloser.labels))
        if any(o == wildcard for o, _ in nsecs):
            raise DnssecError(f"the wildcard {wildcard} exists", EDE_BOGUS)
        if not any(_covers(o, d.next_name, wildcard) for o, d in nsecs):
            raise DnssecError(f"no NSEC denies the wildcard {wildcard}", EDE_NSEC_MISSING)
        return
    items = _nsec3s(recs)
    encloser, _cover = _closest_encloser_nsec3(items, qname)
    wildcard = Name((b"*", *encloser.labels))
    if _nsec3_cover(items, wildcard) is None:
        raise DnssecError(f"no NSEC3 denies the wildcard {wildcard}", EDE_NSEC_MISSING)


def check_expansion(name: Name, records: Iterable[RR]) -> None:
    """Raise unless NSEC/NSEC3 ``records`` show ``name`` itself does not exist, as a
    wildcard expansion to ``name`` requires (RFC 4035 5.3.4, RFC 5155 8.8)."""
    recs = list(records)
    for rr in recs:
        if isinstance(rr.rdata, NSEC) and _covers(rr.name, rr.rdata.next_name, name):
            return
    items = _nsec3s(recs)
    if items:
        # the next closer name below the wildcard's parent must be covered
        for depth in range(len(name.labels), 0, -1):
            candidate = Name(name.labels[len(name.labels) - depth :])
            if _nsec3_cover(items, candidate) is not None:
                return
    raise DnssecError(f"no proof that {name} does not exist beside its wildcard",
                      EDE_NSEC_MISSING)  # fmt: skip


def check_nodata(qname: Name, qtype: int, records: Iterable[RR]) -> None:
    """Raise unless the NSEC/NSEC3 ``records`` prove qname has no ``qtype`` (nor CNAME)."""
    recs = list(records)
    for rr in recs:
        if isinstance(rr.rdata, NSEC) and rr.name == qname:
            if qtype in rr.rdata.types or RRType.CNAME in rr.rdata.types:
                raise DnssecError(f"the NSEC of {qname} lists the type", EDE_BOGUS)
            return
    items = _nsec3s(recs)
    match = _nsec3_match(items, qname)
    if match is not None:
        if qtype in match.rdata.types or RRType.CNAME in match.rdata.types:
            raise DnssecError(f"the NSEC3 of {qname} lists the type", EDE_BOGUS)
        return
    if items:
        encloser, cover = _closest_encloser_nsec3(items, qname)
        if qtype == RRType.DS and cover.rdata.flags & 1:
            return  # RFC 5155 8.6: in an opt-out span
        wild = _nsec3_match(items, Name((b"*", *encloser.labels)))  # RFC 5155 8.7
        if (
            wild is not None
            and qtype not in wild.rdata.types
            and (RRType.CNAME not in wild.rdata.types)
        ):
            return
    nsecs = [(rr.name, rr.rdata) for rr in recs if isinstance(rr.rdata, NSEC)]
    covered = [(o, d) for o, d in nsecs if _covers(o, d.next_name, qname)]
    for _owner, data in covered:
        if data.next_name.is_subdomain(qname) and data.next_name != qname:
            return  # qname is an empty non-terminal (RFC 4035 3.1.3.2)
    if covered:  # a wildcard NODATA: qname is absent and the wildcard lacks the type
        for owner, data in nsecs:
            wildcard = owner.labels[:1] == (b"*",) and qname.is_subdomain(owner.parent())
            if wildcard and qtype not in data.types and RRType.CNAME not in data.types:
                return
    raise DnssecError(f"no NSEC or NSEC3 proves that {qname} has no such type", EDE_NSEC_MISSING)


def _common(a: Name, *others: Name) -> Name:
    out = a.key
    for other in others:
        key = other.key
        n = 0
        while n < min(len(out), len(key)) and out[len(out) - 1 - n] == key[len(key) - 1 - n]:
            n += 1
        out = out[len(out) - n :]
    return Name(out)
