"""The cache and the stub lookup with explicit time; the Resolver device on real servers."""

from __future__ import annotations

import asyncio
import socket

import pytest
from conftest import ZONE

from mirage.core.types import Resolver
from mirage.dns import (
    Authority,
    Cache,
    Message,
    Name,
    Question,
    Rcode,
    ResolveError,
    RRType,
    StubLookup,
    Zone,
    make_response,
    parse_zone,
    pull_message,
    push_message,
    read_zone,
)
from mirage.dns.resolver import DnsResolver, parse_servers

WWW = Name.from_text("www.example.com.")
AUTH = Authority([Zone.from_records(read_zone(ZONE))])


def answer_for(data: bytes, *, tcp: bool = False, auth: Authority = AUTH) -> bytes:
    (reply,) = auth.handle(data, tcp=tcp)
    return reply


# -- cache -------------------------------------------------------------------------


def response(name: str, rtype: int, auth: Authority = AUTH) -> Message:
    lookup = StubLookup(Name.from_text(name), rtype, [("s", 53)], ident=1, now=0)
    transmit = lookup.transmit()
    assert transmit is not None
    return pull_message(answer_for(transmit.data, auth=auth))


def test_cache_expires_positive_answers_and_counts_down_ttls() -> None:
    cache = Cache()
    msg = response("mail.example.com.", RRType.A)  # TTL 300
    cache.put(msg, now=1000.0)
    hit = cache.get(Name.from_text("MAIL.example.com."), RRType.A, now=1100.0)
    assert hit is not None and hit.answer[0].ttl == 200
    assert cache.get(Name.from_text("mail.example.com."), RRType.A, now=1300.0) is None
    assert (cache.hits, cache.misses) == (1, 1)


def test_negative_caching_rfc2308() -> None:
    cache = Cache()
    nx = response("nope.example.com.", RRType.A)
    nodata = response("www.example.com.", RRType.MX)
    cache.put(nx, now=0.0)
    cache.put(nodata, now=0.0)
    # min(SOA TTL 3600, MINIMUM 300) = 300 seconds
    hit = cache.get(Name.from_text("nope.example.com."), RRType.A, now=299.0)
    assert hit is not None and hit.rcode == Rcode.NXDOMAIN and hit.answer == ()
    nd = cache.get(WWW, RRType.MX, now=10.0)
    assert nd is not None and nd.rcode == Rcode.NOERROR and nd.answer == ()
    assert cache.get(Name.from_text("nope.example.com."), RRType.A, now=300.0) is None
    # no SOA, no negative caching
    bare = Message(id=1, qr=True, rcode=Rcode.NXDOMAIN, question=(Question(WWW, RRType.A),))
    cache.put(bare, now=0.0)
    assert cache.get(WWW, RRType.A, now=1.0) is None
    servfail = Message(id=1, qr=True, rcode=Rcode.SERVFAIL, question=(Question(WWW, RRType.A),))
    cache.put(servfail, now=0.0)
    assert len(cache) == 1  # the expired NXDOMAIN went on its lookup; SERVFAIL not kept


def test_cache_is_bounded() -> None:
    cache = Cache(max_entries=3)
    for i in range(5):
        cache.put(response(f"host{i + 1}.example.com.", RRType.A), now=0.0)
    assert len(cache) == 3
    assert cache.get(Name.from_text("host1.example.com."), RRType.A, now=1.0) is None
    assert cache.get(Name.from_text("host5.example.com."), RRType.A, now=1.0) is not None
    assert cache.expire(now=1e9) == 3


# -- stub lookup state machine -----------------------------------------------------


def test_stub_retries_next_server_on_timeout_then_gives_up() -> None:
    lookup = StubLookup(WWW, RRType.A, [("a", 53), ("b", 53)], ident=7, now=0.0, timeout=2.0)
    first = lookup.transmit()
    assert first is not None and first.server == ("a", 53) and not first.tcp
    assert lookup.transmit() is None and lookup.get_timer() == 2.0
    lookup.handle_timer(1.0)  # too early: nothing
    assert lookup.transmit() is None
    servers = []
    for now in (2.0, 4.0, 6.0):
        lookup.handle_timer(now)
        sent = lookup.transmit()
        assert sent is not None
        servers.append(sent.server)
    assert servers == [("b", 53), ("a", 53), ("b", 53)]
    lookup.handle_timer(8.0)
    assert lookup.done and isinstance(lookup.error, ResolveError)
    assert lookup.get_timer() is None


def test_stub_ignores_mismatched_answers_and_moves_on_after_servfail() -> None:
    lookup = StubLookup(WWW, RRType.A, [("a", 53), ("b", 53)], ident=7, now=0.0)
    sent = lookup.transmit()
    assert sent is not None
    good = pull_message(answer_for(sent.data))
    wrong_id = push_message(Message(**{**_fields(good), "id": 8}))
    lookup.receive(wrong_id, 0.1)
    lookup.receive(b"garbage", 0.1)
    assert not lookup.done
    servfail = make_response(pull_message(sent.data), rcode=Rcode.SERVFAIL)
    lookup.receive(push_message(servfail), 0.2)
    retry = lookup.transmit()
    assert retry is not None and retry.server == ("b", 53)
    lookup.receive(answer_for(retry.data), 0.3)
    assert lookup.done and lookup.result is not None and len(lookup.result.answer) == 2


def _fields(msg: Message) -> dict[str, object]:
    return {name: getattr(msg, name) for name in msg.__dataclass_fields__}


def test_stub_falls_back_to_tcp_on_truncation() -> None:
    big = "\n".join(f'big 60 TXT "{"x" * 200} {i}"' for i in range(30))
    zone = Zone.from_records(parse_zone("$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 1.2.3.4\n"
                                        + big + "\n", "t."))  # fmt: skip
    auth = Authority([zone])
    lookup = StubLookup(Name.from_text("big.t."), RRType.TXT, [("a", 53)], ident=3, now=0.0)
    udp = lookup.transmit()
    assert udp is not None and not udp.tcp
    lookup.receive(answer_for(udp.data, auth=auth), 0.1)
    tcp = lookup.transmit()
    assert tcp is not None and tcp.tcp and tcp.server == ("a", 53)
    lookup.receive(answer_for(tcp.data, tcp=True, auth=auth), 0.2, tcp=True)
    assert lookup.done and lookup.result is not None and len(lookup.result.answer) == 30


def test_parse_servers() -> None:
    assert parse_servers("127.0.0.1, 10.0.0.1:5353,[::1]:53,::1") == [
        ("127.0.0.1", 53), ("10.0.0.1", 5353), ("::1", 53), ("::1", 53)
    ]  # fmt: skip
    for bad in ("", "host.example", "1.2.3.4:x", "1.2.3.4:0"):
        with pytest.raises(ValueError):
            parse_servers(bad)


# -- the device, against real servers ------------------------------------------------


async def _resolve(port: int, names: list[str]) -> tuple[list[object], Cache]:
    from mirage.unix.stack import SocketStack

    stack = await SocketStack.connect(ipv4="127.0.0.1")
    resolver = await DnsResolver.connect(stack, nameserver=f"127.0.0.1:{port}")
    assert isinstance(resolver, Resolver)
    out: list[object] = []
    try:
        for name in names:
            try:
                out.append(await resolver.getaddrinfo(name))
            except ResolveError as exc:
                out.append(("error", exc.rcode))
    finally:
        await resolver.disconnect()
        await stack.disconnect()
    return out, resolver.cache


NAMES = ["www.example.com", "chain.example.com", "nope.example.com", "mail.example.com",
         "x.wild.example.com", "www.example.com", "192.0.2.1", "sub.example.com",
         "nope.example.com"]  # fmt: skip
EXPECTED = [
    ["192.0.2.10", "192.0.2.11", "2001:db8::10"],
    ["192.0.2.10", "192.0.2.11", "2001:db8::10"],
    ("error", Rcode.NXDOMAIN),
    ["192.0.2.3"],
    ["192.0.2.99"],
    ["192.0.2.10", "192.0.2.11", "2001:db8::10"],
    ["192.0.2.1"],
    ("error", Rcode.NOERROR),
    ("error", Rcode.NXDOMAIN),
]


def _sorted(values: list[object]) -> list[object]:
    return [sorted(v, key=lambda a: (":" in a, a)) if isinstance(v, list) else v for v in values]


def test_resolver_against_our_server(our_server: int) -> None:
    got, cache = asyncio.run(_resolve(our_server, NAMES))
    assert _sorted(got) == EXPECTED
    assert cache.hits == 4  # the second www (A and AAAA) and nope (A and AAAA)


def test_resolver_against_nsd(nsd_server: int) -> None:
    got, _ = asyncio.run(_resolve(nsd_server, NAMES))
    assert _sorted(got) == EXPECTED


def test_resolver_tcp_fallback_against_a_real_server(tmp_path: object) -> None:
    """An answer too big for UDP comes back over TCP from our server's driver."""
    from mirage.dns.server import DnsServer
    from mirage.unix.stack import SocketStack

    records = "\n".join(f"many 60 A 10.0.{i // 250}.{i % 250 + 1}" for i in range(120))
    zone = Zone.from_records(parse_zone("$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 1.2.3.4\n"
                                        + records + "\n", "big.test."))  # fmt: skip

    async def main() -> list[str]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        stack = await SocketStack.connect(ipv4="127.0.0.1")
        server = DnsServer(stack, Authority([zone]), port)
        await server.start()
        resolver = DnsResolver(stack, [("127.0.0.1", port)])
        try:
            return await resolver.getaddrinfo("many.big.test")
        finally:
            await resolver.disconnect()
            await server.stop()
            await stack.disconnect()

    assert len(asyncio.run(main())) == 120


def test_resolver_times_out_without_server() -> None:
    from mirage.unix.stack import SocketStack

    async def main() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # nobody answers there (the socket eats queries)
            stack = await SocketStack.connect(ipv4="127.0.0.1")
            resolver = DnsResolver(stack, [("127.0.0.1", port)], timeout=0.2, attempts=1)
            try:
                with pytest.raises(ResolveError, match="timed out"):
                    await resolver.getaddrinfo("www.example.com")
            finally:
                await resolver.disconnect()
                await stack.disconnect()

    asyncio.run(main())
