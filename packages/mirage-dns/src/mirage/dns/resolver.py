"""A caching stub resolver over a mirage ``Stack``: the ``Resolver`` module type.

The asyncio driver runs :class:`~mirage.dns._stub.StubLookup` (UDP from an ephemeral
port of the stack, TCP when an answer is truncated) and keeps answers in a
:class:`~mirage.dns._cache.Cache` with a monotonic clock. :meth:`DnsResolver.getaddrinfo`
asks for A and AAAA together and returns the IPv4 addresses, then the IPv6 ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import time
from collections.abc import Callable, Iterable

from mirage.core.types import Stack

from ._cache import Cache, CachedAnswer
from ._consts import Rcode, RRType
from ._errors import ResolveError
from ._message import RR
from ._name import Name, NameError_
from ._plugin import ROOT_SERVERS
from ._rdata import AAAA, CNAME, A
from ._recursive import Delegations, Limits, Recursion
from ._stub import StubLookup, Transmit

__all__ = ["DnsResolver", "RecursiveResolver", "addresses_from_answer", "parse_servers"]

_Lookup = StubLookup | Recursion


def addresses_from_answer(name: Name, rtype: int, answer: tuple[RR, ...]) -> list[str]:
    """Follow the CNAME chain from ``name`` in an answer section to its addresses."""
    target = name
    for _ in range(16):
        cname = [rr for rr in answer if rr.rtype == RRType.CNAME and rr.name == target]
        if not cname:
            break
        data = cname[0].rdata
        assert isinstance(data, CNAME)
        target = data.target
    out = []
    for rr in answer:
        if rr.rtype == rtype and rr.name == target and isinstance(rr.rdata, (A, AAAA)):
            out.append(rr.rdata.address)
    return out


def parse_servers(text: str, default_port: int = 53) -> list[tuple[str, int]]:
    servers = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        host, port = item, default_port
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            if rest.startswith(":") and rest[1:].isdigit():
                port = int(rest[1:])
        elif item.count(":") == 1:
            host, _, p = item.partition(":")
            if not p.isdigit():
                raise ValueError(f"bad name server {item!r}")
            port = int(p)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"name server {item!r} is not an IP address") from None
        if not 0 < port < 65536:
            raise ValueError(f"bad port in {item!r}")
        servers.append((host, port))
    if not servers:
        raise ValueError("no name server given")
    return servers


class DnsResolver:
    """Resolves names by asking ``nameservers`` (``host`` or ``host:port`` each)."""

    def __init__(
        self,
        stack: Stack,
        servers: list[tuple[str, int]],
        *,
        cache: Cache | None = None,
        timeout: float = 2.0,
        attempts: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stack = stack
        self.servers = servers
        self.cache = cache if cache is not None else Cache()
        self.timeout = timeout
        self.attempts = attempts
        self.clock = clock
        self._port: int | None = None
        self._active: dict[_Lookup, asyncio.Event] = {}

    @classmethod
    async def connect(cls, stack: Stack, nameserver: str = "127.0.0.1") -> DnsResolver:
        """``nameserver``: comma-separated ``host``, ``host:port`` or ``[v6]:port``."""
        return cls(stack, parse_servers(nameserver))

    async def disconnect(self) -> None:
        if self._port is not None:
            await self.stack.udp.unlisten(self._port)
            self._port = None

    async def _ensure_port(self) -> int:
        if self._port is not None:
            return self._port
        for _ in range(16):
            port = random.randint(20000, 60999)
            try:
                await self.stack.udp.listen(port, self._datagram)
            except OSError:
                continue
            self._port = port
            return port
        raise ResolveError("no free UDP port for the resolver")

    def _datagram(self, src: str, src_port: int, payload: bytes) -> None:
        if len(payload) < 2:
            return
        ident = int.from_bytes(payload[:2], "big")
        for lookup, wake in list(self._active.items()):
            if lookup.ident == ident and lookup.server == (src, src_port):
                lookup.receive(payload, self.clock())
                wake.set()

    def _lookup(self, name: Name, rtype: int, now: float) -> _Lookup:
        return StubLookup(name, rtype, self.servers, ident=random.getrandbits(16), now=now,
                          timeout=self.timeout, attempts=self.attempts)  # fmt: skip

    async def query(self, name: Name, rtype: int) -> CachedAnswer:
        """The answer section and rcode for ``name``/``rtype``, from the cache or servers."""
        now = self.clock()
        cached = self.cache.get(name, rtype, now)
        if cached is not None:
            return cached
        await self._ensure_port()
        lookup = self._lookup(name, rtype, now)
        wake = asyncio.Event()
        self._active[lookup] = wake
        try:
            while not lookup.done:
                transmit = lookup.transmit()
                if transmit is not None:
                    if transmit.tcp:
                        await self._over_tcp(lookup, transmit)
                        continue
                    assert self._port is not None
                    try:
                        await self.stack.udp.write(
                            *transmit.server, transmit.data, src_port=self._port
                        )
                    except OSError:
                        self._give_up(lookup)
                        continue
                timer = lookup.get_timer()
                if timer is None:
                    continue
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), max(0.0, timer - self.clock()))
                lookup.handle_timer(self.clock())
        finally:
            del self._active[lookup]
        if lookup.error is not None:
            raise lookup.error
        assert lookup.result is not None
        self.cache.put(lookup.result, self.clock())
        return CachedAnswer(lookup.result.rcode, lookup.result.answer, lookup.result.ad)

    def _give_up(self, lookup: _Lookup) -> None:
        """The current exchange failed at once (unreachable, connection refused)."""
        deadline = lookup.get_timer()
        lookup.handle_timer(self.clock() if deadline is None else max(deadline, self.clock()))

    async def _over_tcp(self, lookup: _Lookup, transmit: Transmit) -> None:
        async def exchange() -> bytes:
            flow = await self.stack.tcp.connect(*transmit.server)
            try:
                await flow.write(len(transmit.data).to_bytes(2, "big") + transmit.data)
                buf = b""
                while len(buf) < 2 or len(buf) < 2 + int.from_bytes(buf[:2], "big"):
                    chunk = await flow.read()
                    if not chunk:
                        raise ConnectionError("connection closed before the answer")
                    buf += chunk
                return buf[2 : 2 + int.from_bytes(buf[:2], "big")]
            finally:
                await flow.close()

        deadline = lookup.get_timer()
        wait = self.timeout if deadline is None else max(0.0, deadline - self.clock())
        try:
            data = await asyncio.wait_for(exchange(), wait)
        except (OSError, ConnectionError, TimeoutError):
            self._give_up(lookup)
            return
        lookup.receive(data, self.clock(), tcp=True)

    async def _cached_or_query(
        self, name: Name, rtype: int, hit: CachedAnswer | None
    ) -> CachedAnswer:
        return hit if hit is not None else await self.query(name, rtype)

    async def getaddrinfo(self, name: str) -> list[str]:
        try:
            return [str(ipaddress.ip_address(name))]
        except ValueError:
            pass
        try:
            qname = Name.from_text(name if name.endswith(".") else name + ".")
        except NameError_ as exc:
            raise ResolveError(f"bad name {name!r}: {exc}") from None
        now = self.clock()
        hit_a = self.cache.get(qname, RRType.A, now)
        hit_aaaa = self.cache.get(qname, RRType.AAAA, now)
        results: list[CachedAnswer | BaseException]
        if hit_a is not None and hit_aaaa is not None:  # the common case: no task needed
            results = [hit_a, hit_aaaa]
        else:
            results = list(
                await asyncio.gather(
                    self._cached_or_query(qname, RRType.A, hit_a),
                    self._cached_or_query(qname, RRType.AAAA, hit_aaaa),
                    return_exceptions=True,
                )
            )
        addresses: list[str] = []
        errors: list[BaseException] = []
        nxdomain = False
        for rtype, result in zip((RRType.A, RRType.AAAA), results, strict=True):
            if isinstance(result, BaseException):
                errors.append(result)
                continue
            nxdomain = nxdomain or result.rcode == Rcode.NXDOMAIN
            addresses += addresses_from_answer(qname, rtype, result.answer)
        if addresses:
            return addresses
        if errors and len(errors) == 2:
            raise errors[0]
        rcode = Rcode.NXDOMAIN if nxdomain else Rcode.NOERROR
        raise ResolveError(
            f"cannot resolve {name!r}: {'no such name' if nxdomain else 'no address'}", rcode=rcode
        )


class RecursiveResolver(DnsResolver):
    """Resolves names iteratively from root server addresses (``root_hints``).

    The same device as :class:`DnsResolver` (``query``, ``getaddrinfo``), with the
    sans-IO :class:`~mirage.dns._recursive.Recursion` in place of the stub: answers
    and zone cuts are cached across lookups. With ``trust_anchors`` (DS or DNSKEY
    records), answers are validated with DNSSEC: ``query`` gives ``secure`` answers
    for signed zones, insecure ones for zones provably unsigned, and raises
    :class:`ResolveError` (SERVFAIL) for bogus data.
    """

    def __init__(
        self,
        stack: Stack,
        root_hints: list[str],
        *,
        cache: Cache | None = None,
        limits: Limits | None = None,
        port: int = 53,
        clock: Callable[[], float] = time.monotonic,
        trust_anchors: Iterable[RR] = (),
    ) -> None:
        self.limits = limits or Limits()
        super().__init__(stack, [], cache=cache, timeout=self.limits.timeout,
                         attempts=self.limits.attempts, clock=clock)  # fmt: skip
        self.delegations = Delegations(root_hints, trust_anchors=trust_anchors)
        self.port = port
        self.last_queries = 0
        """Queries the last lookup that went to the network sent."""

    @classmethod
    async def connect(cls, stack: Stack, root_hints: str = ROOT_SERVERS) -> RecursiveResolver:
        """``root_hints``: comma-separated IP addresses of root name servers."""
        hints = [host for host, _ in parse_servers(root_hints)]
        return cls(stack, hints)

    def _lookup(self, name: Name, rtype: int, now: float) -> _Lookup:
        lookup = Recursion(name, rtype, self.delegations, now=now, cache=self.cache,
                           limits=self.limits, port=self.port)  # fmt: skip
        self._last = lookup
        return lookup

    async def query(self, name: Name, rtype: int) -> CachedAnswer:
        self._last = None
        try:
            return await super().query(name, rtype)
        finally:
            self.last_queries = self._last.queries if self._last is not None else 0

    _last: Recursion | None = None
