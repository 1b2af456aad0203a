"""The sans-IO authoritative server: query bytes in, response bytes out.

:meth:`Authority.handle` takes one query (a UDP datagram or one TCP frame without
its length prefix), whether it came over TCP, the client's address and ``now``; it
returns the response messages to send (several for AXFR, none when the input must be
dropped). It never raises on input from the network:

- a message whose header is unreadable, or which is itself a response, is dropped;
- a query that does not decode gets FORMERR with its id (RFC 1035 section 4.1.1);
- opcodes other than QUERY get NOTIMP, an EDNS version above 0 gets BADVERS
  (RFC 6891), names in no zone of ours get REFUSED;
- over UDP the response is cut to the client's EDNS payload size (512 without EDNS)
  and TC is set when the answer does not fit; AXFR and IXFR are served over TCP only;
- DNS cookies (RFC 7873/9018) are answered with a server cookie keyed by a secret;
- a request with a TSIG (RFC 8945) is verified against the configured keys and its
  answer signed; UPDATE (RFC 2136) is applied only when so signed, else REFUSED;
- NOTIFY (RFC 1996) for a zone we serve is acknowledged and recorded in
  :attr:`Authority.notifications` for a secondary's driver.

Encoded responses to identical queries (same bytes after the id, same transport) are
kept in a bounded cache: zones do not change while served.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace

from ._answers import AnswerTable, wire_of
from ._consts import Class, Opcode, Rcode, RRType
from ._errors import DnsDecodeError
from ._journal import Delta, Journal, diff
from ._message import (
    OPT_COOKIE,
    OPT_EDE,
    OPT_NSID,
    OPT_PADDING,
    RR,
    Edns,
    EdnsOption,
    Message,
    make_response,
    pull_message,
    pull_query,
    push_message,
)
from ._name import Name
from ._rdata import SOA
from ._refresh import serial_newer
from ._signing import ZoneSigner
from ._tsig import BADTIME, TSIG, TsigError, TsigKey, request_key, sign, sign_next, verify
from ._update import apply_update
from ._zone import Zone

__all__ = ["Authority"]

OUR_PAYLOAD = 1232
TCP_LIMIT = 65535
AXFR_CHUNK = 16384
CACHE_SIZE = 20000
MAX_CHANGES = 1000
_OPT = b"\x00\x00\x29" + OUR_PAYLOAD.to_bytes(2, "big") + bytes(6)
_OPT_DO = b"\x00\x00\x29" + OUR_PAYLOAD.to_bytes(2, "big") + b"\x00\x00\x80\x00\x00\x00"


def bump_serial(zone: Zone) -> Zone:
    """``zone`` with its SOA serial increased by one (RFC 1982)."""
    soa = zone.soa
    assert isinstance(soa.rdata, SOA)
    new_soa = replace(soa, rdata=replace(soa.rdata, serial=(soa.rdata.serial + 1) & 0xFFFFFFFF))
    body = [rr for rr in zone.records() if rr is not soa]
    return Zone.from_records([new_soa, *body], zone.origin)


class Authority:
    """Answers queries for a set of zones."""

    def __init__(
        self,
        zones: Iterable[Zone],
        *,
        cookie_secret: bytes | None = None,
        tsig_keys: Iterable[TsigKey] = (),
        cache_size: int = CACHE_SIZE,
        signers: Mapping[Name, ZoneSigner] | None = None,
        now: float | None = None,
        answer_table: bool = True,
        nsid: bytes | None = None,
    ) -> None:
        """``answer_table``: answer the common queries from the zones' precompiled
        answers (:mod:`._answers`); off, every query takes the general path."""
        self.cache_size = cache_size
        self.answer_table = answer_table
        self.nsid = nsid
        """This server's identifier, given to queries asking for it (RFC 5001)."""
        self._tables: dict[bytes, AnswerTable] = {}
        self.signers = {name.key: signer for name, signer in (signers or {}).items()}
        """Zones signed by the server (RFC 4035): at load, after UPDATEs, when due."""
        self._signed_at = time.time() if now is None else now
        self.journals: dict[tuple[bytes, ...], Journal] = {}
        """Deltas of each zone's serial changes, for IXFR (RFC 1995)."""
        self.changes: list[Delta] = []
        """Zone changes (UPDATEs, re-signing, replacements) for a driver to drain:
        it persists them and sends NOTIFYs."""
        self.zones: dict[tuple[bytes, ...], Zone] = {}
        for zone in zones:
            signer = self.signers.get(zone.origin.key)
            self._install(signer.sign(zone, self._signed_at) if signer else zone)
        self.tsig_keys = {key.name.key: key for key in tsig_keys}
        self._secret = cookie_secret or os.urandom(16)
        self._cache: dict[tuple[bytes, int], bytes] = {}
        self.notifications: list[tuple[Name, str]] = []
        """NOTIFYs received for our zones, (origin, client), for a driver to drain."""

    def find_zone(self, name: Name) -> Zone | None:
        key = name.key
        for i in range(len(key) + 1):
            zone = self.zones.get(key[i:])
            if zone is not None:
                return zone
        return None

    def handle(
        self,
        data: bytes,
        *,
        tcp: bool = False,
        client: str = "",
        now: float = 0.0,
        encrypted: bool = False,
    ) -> list[bytes]:
        """The responses to ``data``. ``encrypted``: it came over TLS, where answers
        to padded queries are padded to blocks of 468 octets (RFC 7830, RFC 8467)."""
        if len(data) < 12 or data[2] & 0x80:
            return []  # no header, or a response: drop (never answer an answer)
        if self.signers and any(s.due(self._signed_at, now) for s in self.signers.values()):
            self.resign(now)
        if self.answer_table:
            fast = self._fast(data, tcp)
            if fast is not None:
                return [fast]
        cache_key = (data[2:], tcp + 2 * encrypted)
        cached = self._cache.get(cache_key)
        if cached is not None:
            return [data[:2] + cached]
        query = pull_query(data)
        if query is None:
            try:
                query = pull_message(data)
            except DnsDecodeError as exc:
                return [self._formerr(data, exc)]
        if query.additional and query.additional[-1].rtype == TSIG:
            return self._signed(data, query, tcp, client, now)
        if query.opcode == Opcode.UPDATE:  # only signed updates are accepted
            return [self._simple(query, Rcode.REFUSED, None)]
        responses, cacheable = self._answer(query, tcp, client, now, encrypted)
        if cacheable and len(responses) == 1 and self.cache_size > 0:
            if len(self._cache) >= self.cache_size:
                self._cache.clear()
            self._cache[cache_key] = responses[0][2:]
        return responses

    def _fast(self, data: bytes, tcp: bool) -> bytes | None:
        """The answer to a common query from the zone's precompiled answers, or None
        (then the general path answers, with the same bytes for these queries)."""
        # opcode QUERY, one question, no answer or authority, at most one additional
        if data[2] & 0x78 or data[4:10] != b"\x00\x01\x00\x00\x00\x00" or data[10]:
            return None
        ar = data[11]
        end = data.find(0, 12)
        if ar > 1 or end < 0 or end > 266:
            return None
        qend = end + 5
        n = len(data)
        if ar:  # an OPT without options, version 0, owned by the root
            if (
                n != qend + 11
                or data[qend : qend + 3] != b"\x00\x00\x29"
                or data[qend + 5]
                or data[qend + 6]
                or data[qend + 9]
                or data[qend + 10]
            ):
                return None
            dnssec_ok = data[qend + 7] & 0x80
            limit = TCP_LIMIT if tcp else max(512, data[qend + 3] << 8 | data[qend + 4])
        elif n != qend:
            return None
        else:
            dnssec_ok = 0
            limit = TCP_LIMIT if tcp else 512
        if data[end + 3] or data[end + 4] not in (1, 255):  # class IN or ANY
            return None
        qwire = data[12 : end + 1].lower()
        tables = self._tables
        table = None
        pos = 0
        last = end - 12
        while True:  # the closest zone, checking that the name is well formed
            if table is None:
                table = tables.get(qwire[pos:])
            length = qwire[pos]
            if length == 0:
                break
            if length > 63:
                return None
            pos += 1 + length
            if pos > last:
                return None
        if pos != last or table is None or table.zone is not self.zones.get(table.key):
            return None
        entry = table.entry(qwire, data[end + 1] << 8 | data[end + 2], bool(dnssec_ok))
        if entry is None:
            return None
        flags, counts, counts_opt, body = entry
        if qend + len(body) + (11 if ar else 0) > limit:
            return None  # truncation: the general path
        rd, cd = data[2] & 0x01, data[3] & 0x10
        head = data[:2] + bytes(((flags >> 8) | rd, (flags & 0xFF) | cd))
        if ar:
            opt = _OPT_DO if dnssec_ok else _OPT
            return head + b"\x00\x01" + counts_opt + data[12:qend] + body + opt
        return head + b"\x00\x01" + counts + data[12:qend] + body

    def _install(self, zone: Zone) -> None:
        """Serve ``zone`` with a new (empty) answer table."""
        self.zones[zone.origin.key] = zone
        self._tables[wire_of(zone.origin.key)] = AnswerTable(zone)

    def _signed(
        self, data: bytes, query: Message, tcp: bool, client: str, now: float
    ) -> list[bytes]:
        """A request with a TSIG: verify it, answer, sign the answer (RFC 8945)."""
        try:
            verified = verify(data, self.tsig_keys, now)
        except DnsDecodeError as exc:
            return [self._formerr(data, exc)]
        except TsigError as exc:
            reply = self._simple(query, exc.rcode, None)
            key = exc.key or request_key(data)
            assert key is not None
            return [sign(reply, key, now, error=exc.error, unsigned=exc.error != BADTIME)]
        assert verified is not None
        if query.opcode == Opcode.UPDATE:
            replies = [self._update(query, now)]
        else:
            replies, _ = self._answer(query, tcp, client, now)
        # RFC 8945 5.3.1: the first message covers the request's MAC, each later one
        # (of an AXFR or IXFR) the MAC before it, with the timers only
        out = [sign(replies[0], verified.key, now, request_mac=verified.mac)]
        for reply in replies[1:]:
            out.append(sign_next(reply, verified.key, now, prior=out[-1]))
        return out

    def _update(self, query: Message, now: float) -> bytes:
        if len(query.question) != 1 or query.question[0].rtype != RRType.SOA:
            return self._simple(query, Rcode.FORMERR, None)
        zone = self.zones.get(query.question[0].name.key)
        if zone is None:
            return self._simple(query, Rcode.NOTAUTH, None)
        rcode, new_zone = apply_update(zone, query)
        if new_zone is not None:
            signer = self.signers.get(new_zone.origin.key)
            if signer is not None:
                new_zone = signer.sign(new_zone, now)
            self.replace_zone(new_zone)
        return self._simple(query, rcode, None)

    def _formerr(self, data: bytes, exc: DnsDecodeError) -> bytes:
        ident = int.from_bytes(data[:2], "big")
        flags = int.from_bytes(data[2:4], "big")
        flags = 0x8000 | (flags & 0x7900) | exc.rcode  # QR, opcode, RD kept
        return ident.to_bytes(2, "big") + flags.to_bytes(2, "big") + bytes(8)

    def _answer(
        self, query: Message, tcp: bool, client: str, now: float, encrypted: bool = False
    ) -> tuple[list[bytes], bool]:
        edns = query.edns
        limit = TCP_LIMIT if tcp else 512
        reply_edns: Edns | None = None
        cacheable = True
        if edns is not None:
            if not tcp:
                limit = max(512, min(edns.payload, 65535))
            options: tuple[EdnsOption, ...] = ()
            raw_cookie = edns.option(OPT_COOKIE)
            if raw_cookie is not None:
                cacheable = False
                if edns.cookie is None:
                    return [self._simple(query, Rcode.FORMERR, None)], False
                options = (
                    EdnsOption(
                        OPT_COOKIE, raw_cookie[:8] + self._cookie(raw_cookie[:8], client, now)
                    ),
                )
            if self.nsid is not None and edns.option(OPT_NSID) is not None:
                options += (EdnsOption(OPT_NSID, self.nsid),)  # RFC 5001
            # RFC 8467 4.1: block-length padding of answers to padded queries over TLS
            padding = 468 if encrypted and edns.option(OPT_PADDING) is not None else 0
            reply_edns = Edns(payload=OUR_PAYLOAD, dnssec_ok=edns.dnssec_ok, options=options,
                              padding=padding)  # fmt: skip
            if edns.version > 0:
                return [self._simple(query, Rcode.BADVERS, reply_edns)], cacheable
        if query.opcode == Opcode.NOTIFY:
            return [self._notify(query, client, reply_edns)], False
        if query.opcode != Opcode.QUERY:
            return [self._simple(query, Rcode.NOTIMP, reply_edns)], cacheable
        if len(query.question) != 1:
            return [self._simple(query, Rcode.FORMERR, reply_edns)], cacheable
        question = query.question[0]
        if question.rclass not in (Class.IN, Class.ANY):
            return [self._simple(query, Rcode.REFUSED, reply_edns)], cacheable
        zone = self.find_zone(question.name)
        if zone is None:
            if reply_edns is not None:  # RFC 8914: Extended DNS Error 20, Not Authoritative
                ede = EdnsOption(OPT_EDE, (20).to_bytes(2, "big"))
                reply_edns = replace(reply_edns, options=(*reply_edns.options, ede))
            return [self._simple(query, Rcode.REFUSED, reply_edns)], cacheable
        if question.rtype in (RRType.AXFR, RRType.IXFR):
            if not tcp:
                if question.rtype == RRType.IXFR:  # RFC 1995 section 2: SOA only over UDP
                    reply = make_response(query, aa=True, answer=(zone.soa,), edns=reply_edns)
                    return [push_message(reply, limit)], cacheable
                return [self._simple(query, Rcode.REFUSED, reply_edns)], cacheable
            if question.name != zone.origin:
                return [self._simple(query, Rcode.NOTAUTH, reply_edns)], cacheable
            if question.rtype == RRType.IXFR:
                return self._ixfr(query, zone, reply_edns), False
            return self._axfr(query, zone, reply_edns), False
        result = zone.lookup(
            question.name, question.rtype, dnssec_ok=edns is not None and edns.dnssec_ok
        )
        reply = make_response(
            query,
            aa=result.aa,
            rcode=result.rcode,
            answer=result.answer,
            authority=result.authority,
            additional=result.additional,
            edns=reply_edns,
        )
        return [push_message(reply, limit)], cacheable

    def _notify(self, query: Message, client: str, edns: Edns | None) -> bytes:
        """RFC 1996: acknowledge a NOTIFY for a zone we serve and remember it."""
        if len(query.question) != 1 or query.question[0].rtype != RRType.SOA:
            return self._simple(query, Rcode.FORMERR, edns)
        origin = query.question[0].name
        if origin.key not in self.zones:
            return self._simple(query, Rcode.NOTAUTH, edns)
        self.notifications.append((origin, client))
        return push_message(make_response(query, aa=True, edns=edns))

    def set_signer(self, origin: Name, signer: ZoneSigner, now: float) -> None:
        """Sign the zone ``origin`` with ``signer`` from now on (a step of a key
        rollover): it is signed again at once, with a new serial."""
        zone = self.zones.get(origin.key)
        if zone is None:
            raise KeyError(f"no zone {origin}")
        self.signers[origin.key] = signer
        self.replace_zone(signer.sign(bump_serial(zone), now))

    def resign(self, now: float) -> None:
        """Sign the zones that have signers again, with signatures valid from ``now``
        (and a new serial, so that secondaries transfer the new signatures)."""
        self._signed_at = now
        for key, signer in self.signers.items():
            zone = self.zones.get(key)
            if zone is not None:
                self.replace_zone(signer.sign(bump_serial(zone), now))

    def replace_zone(self, zone: Zone) -> None:
        """Serve ``zone`` instead of the zone with its origin (a secondary's refresh,
        an UPDATE); the change goes to the zone's journal and to :attr:`changes`."""
        old = self.zones.get(zone.origin.key)
        self._install(zone)
        self._cache.clear()
        if old is not None and old is not zone:
            delta = diff(old, zone)
            if delta.old_serial != delta.new_serial:
                self.journals.setdefault(zone.origin.key, Journal()).record(delta)
                self.changes.append(delta)
                del self.changes[:-MAX_CHANGES]  # bounded when no driver drains them

    def _simple(self, query: Message, rcode: int, edns: Edns | None) -> bytes:
        return push_message(make_response(query, rcode=rcode, edns=edns))

    def _cookie(self, client_cookie: bytes, client: str, now: float) -> bytes:
        stamp = int(now).to_bytes(4, "big")
        head = b"\x01\x00\x00\x00" + stamp
        digest = hashlib.blake2b(
            head + client_cookie + client.encode(), key=self._secret, digest_size=8
        ).digest()
        return head + digest

    def _ixfr(self, query: Message, zone: Zone, edns: Edns | None) -> list[bytes]:
        """RFC 1995: the deltas since the client's serial, or the whole zone."""
        theirs = [rr.rdata.serial for rr in query.authority
                  if isinstance(rr.rdata, SOA) and rr.name == zone.origin]  # fmt: skip
        if not theirs:
            return [self._simple(query, Rcode.FORMERR, edns)]
        ours = zone.soa.rdata
        assert isinstance(ours, SOA)
        if not serial_newer(ours.serial, theirs[0]):  # up to date: the SOA alone
            return [push_message(make_response(query, aa=True, answer=(zone.soa,), edns=edns))]
        journal = self.journals.get(zone.origin.key)
        deltas = journal.since(theirs[0]) if journal is not None else None
        if deltas is None or deltas[-1].new_serial != ours.serial:
            return self._axfr(query, zone, edns)
        records = [zone.soa]
        for delta in deltas:
            records += delta.records()
        return self._chunks(query, [*records, zone.soa], edns)

    def _axfr(self, query: Message, zone: Zone, edns: Edns | None) -> list[bytes]:
        return self._chunks(query, [*zone.records(), zone.soa], edns)

    def _chunks(self, query: Message, records: list[RR], edns: Edns | None) -> list[bytes]:
        out = []
        batch: list[RR] = []
        size = 0
        for rr in records:
            batch.append(rr)
            size += 64 + len(rr.rdata.to_wire())
            if size > AXFR_CHUNK:
                out.append(
                    push_message(make_response(query, aa=True, answer=tuple(batch), edns=edns))
                )
                batch, size = [], 0
        if batch:
            out.append(push_message(make_response(query, aa=True, answer=tuple(batch), edns=edns)))
        return out
