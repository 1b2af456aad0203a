"""DHCPv4: the codec is total and round-trips; the client core walks RFC 2131's states
in virtual time against a scripted server (offers, ACKs, NAKs, silence)."""

from __future__ import annotations

import random

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mirage.tcpip._errors import DecodeError
from mirage.tcpip.dhcp import (
    ACK,
    DECLINE,
    DISCOVER,
    NAK,
    OFFER,
    RELEASE,
    REQUEST,
    DhcpBound,
    DhcpClient,
    DhcpConfig,
    DhcpMessage,
    DhcpSend,
    DhcpState,
    DhcpUnbound,
)

MAC = bytes.fromhex("020000000001")
SERVER = bytes((10, 1, 0, 1))
OFFERED = bytes((10, 1, 0, 77))
BCAST = b"\xff\xff\xff\xff"
FAST = settings(max_examples=150, deadline=None)


# -- codec ---------------------------------------------------------------------------


@FAST
@given(st.binary(max_size=600))
@example(b"")
@example(b"\x02\x01\x06\x00" + bytes(232) + b"\x63\x82\x53\x63")
@example(b"\x02\x01\x06\x00" + bytes(232) + b"\x63\x82\x53\x63\x35\x05\x01")
def test_decode_is_total(data: bytes) -> None:
    try:
        message = DhcpMessage.decode(data)
    except DecodeError as exc:
        assert exc.layer == "dhcp"
        return
    # The accessors never raise either.
    for name in (
        "message_type",
        "subnet_mask",
        "routers",
        "dns_servers",
        "server_id",
        "lease_time",
        "renewal_time",
        "rebinding_time",
    ):
        getattr(message, name)


@FAST
@given(st.binary(min_size=240, max_size=400))
def test_decode_is_total_with_a_valid_header(tail: bytes) -> None:
    data = b"\x02\x01\x06\x00" + bytes(232) + b"\x63\x82\x53\x63" + tail
    try:
        DhcpMessage.decode(data)
    except DecodeError:
        pass


options = st.dictionaries(st.integers(1, 254), st.binary(min_size=1, max_size=600), max_size=6).map(
    lambda d: tuple(d.items())
)
addr = st.binary(min_size=4, max_size=4)


@FAST
@given(
    st.sampled_from((1, 2)),
    st.integers(0, 2**32 - 1),
    st.binary(min_size=6, max_size=6),
    options,
    addr,
    addr,
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
)
def test_round_trip(
    op: int,
    xid: int,
    chaddr: bytes,
    opts: tuple[tuple[int, bytes], ...],
    ciaddr: bytes,
    yiaddr: bytes,
    secs: int,
    flags: int,
) -> None:
    message = DhcpMessage(op, xid, chaddr, opts, ciaddr, yiaddr, secs=secs, flags=flags)
    data = message.encode()
    assert len(data) >= 300
    assert DhcpMessage.decode(data) == message


def test_options_accessors() -> None:
    message = DhcpMessage(
        2,
        7,
        MAC,
        (
            (53, bytes((ACK,))),
            (1, bytes((255, 255, 255, 0))),
            (3, SERVER + bytes((10, 1, 0, 2))),
            (6, SERVER),
            (51, (3600).to_bytes(4, "big")),
            (54, SERVER),
            (58, b"\x01"),  # malformed: ignored, not an error
        ),
    )
    again = DhcpMessage.decode(message.encode())
    assert again.message_type == ACK
    assert again.subnet_mask == bytes((255, 255, 255, 0))
    assert again.routers == (SERVER, bytes((10, 1, 0, 2)))
    assert again.dns_servers == (SERVER,)
    assert again.lease_time == 3600
    assert again.server_id == SERVER
    assert again.renewal_time is None


def test_split_options_are_joined() -> None:
    # RFC 3396: one option in two pieces.
    raw = bytearray(DhcpMessage(2, 1, MAC, ((53, bytes((OFFER,))),)).encode())
    end = raw.index(255, 240)
    raw[end : end + 1] = bytes((6, 4)) + SERVER + bytes((6, 4)) + OFFERED + b"\xff"
    assert DhcpMessage.decode(bytes(raw)).dns_servers == (SERVER, OFFERED)


# -- the client core ------------------------------------------------------------------


def reply(
    request: DhcpMessage,
    kind: int,
    lease: int | None = 600,
    extra: tuple[tuple[int, bytes], ...] = (),
) -> DhcpMessage:
    opts: list[tuple[int, bytes]] = [(53, bytes((kind,))), (54, SERVER)]
    if kind != NAK:
        opts += [(1, bytes((255, 255, 255, 0))), (3, SERVER), (6, SERVER)]
        if lease is not None:
            opts.append((51, lease.to_bytes(4, "big")))
    return DhcpMessage(
        2,
        request.xid,
        request.chaddr,
        (*opts, *extra),
        yiaddr=OFFERED if kind != NAK else b"\0\0\0\0",
    )


def only_send(actions: list[object]) -> DhcpSend:
    sends = [a for a in actions if isinstance(a, DhcpSend)]
    assert len(sends) == 1, actions
    return sends[0]


def client(**kw: float) -> DhcpClient:
    return DhcpClient(MAC, DhcpConfig(**kw), rng=random.Random(1))  # type: ignore[arg-type]


def bind(c: DhcpClient, now: float = 0.0, lease: int | None = 600) -> DhcpBound:
    discover = only_send(c.start(now))
    assert discover.message.message_type == DISCOVER and discover.dst == BCAST
    assert discover.message.flags & 0x8000
    request = only_send(c.input(reply(discover.message, OFFER), now + 0.01))
    msg = request.message
    assert msg.message_type == REQUEST and request.dst == BCAST
    assert msg.option(50) == OFFERED and msg.option(54) == SERVER
    assert msg.xid == discover.message.xid
    (bound,) = c.input(reply(msg, ACK, lease), now + 0.02)
    assert isinstance(bound, DhcpBound)
    return bound


def test_discover_offer_request_ack() -> None:
    c = client()
    bound = bind(c)
    lease = bound.lease
    assert not bound.renewed
    assert c.state is DhcpState.BOUND
    assert str(lease.interface) == "10.1.0.77/24"
    assert str(lease.gateway) == "10.1.0.1"
    assert lease.dns_servers == (SERVER,)
    assert (lease.lease_time, lease.renewal_time, lease.rebinding_time) == (600, 300, 525)
    # The lease runs from when the REQUEST went out.
    assert lease.acquired == 0.01
    assert c.get_timer() == pytest.approx(300.01)


def test_discover_backs_off_exponentially_with_jitter() -> None:
    c = client()
    c.start(0.0)
    now, waits = 0.0, []
    for _ in range(7):
        at = c.get_timer()
        assert at is not None
        waits.append(at - now)
        now = at
        assert only_send(c.handle_timer(now)).message.message_type == DISCOVER
    for wait, nominal in zip(waits, (4, 8, 16, 32, 64, 64, 64), strict=True):
        assert nominal - 1 <= wait <= nominal + 1


def test_ignores_replies_that_are_not_ours() -> None:
    c = client()
    discover = only_send(c.start(0.0)).message
    other = DhcpMessage(2, discover.xid ^ 1, MAC, ((53, bytes((OFFER,))), (54, SERVER)))
    assert c.input(other, 0.1) == []
    wrong_mac = DhcpMessage(2, discover.xid, b"\x02" * 6, ((53, bytes((OFFER,))), (54, SERVER)))
    assert c.input(wrong_mac, 0.1) == []
    ack_first = reply(discover, ACK)
    assert c.input(ack_first, 0.1) == []
    assert c.state is DhcpState.SELECTING
    assert c.stats.ignored == 3


def test_unanswered_requests_restart_discovery() -> None:
    c = client(request_retries=3)
    discover = only_send(c.start(0.0)).message
    c.input(reply(discover, OFFER), 0.0)
    now = 0.0
    kinds = []
    for _ in range(3):
        at = c.get_timer()
        assert at is not None
        now = at
        kinds.append(only_send(c.handle_timer(now)).message.message_type)
    assert kinds == [REQUEST, REQUEST, DISCOVER]
    assert c.state is DhcpState.SELECTING


def test_nak_while_requesting_restarts() -> None:
    c = client()
    discover = only_send(c.start(0.0)).message
    request = only_send(c.input(reply(discover, OFFER), 0.0)).message
    actions = c.input(reply(request, NAK), 0.1)
    assert isinstance(actions[0], DhcpUnbound)
    again = only_send(actions).message
    assert again.message_type == DISCOVER and again.xid != discover.xid
    assert c.stats.naks == 1


def test_renewing_at_t1_unicast_to_the_server() -> None:
    c = client()
    bind(c)
    at = c.get_timer()
    assert at is not None
    renew = only_send(c.handle_timer(at))
    assert c.state is DhcpState.RENEWING
    assert renew.dst == SERVER
    assert renew.message.ciaddr == OFFERED
    assert renew.message.option(50) is None and renew.message.option(54) is None
    (bound,) = c.input(reply(renew.message, ACK, 600), at + 0.5)
    assert isinstance(bound, DhcpBound) and bound.renewed
    assert bound.lease.acquired == at
    assert c.get_timer() == pytest.approx(at + 300)


def test_renew_retransmits_then_rebinds_then_expires() -> None:
    c = client()
    bind(c, lease=1000)  # T1 500, T2 875, expiry 1000 (from 0.01)
    sent: list[tuple[float, bytes, DhcpState]] = []
    now = 0.0
    for _ in range(20):
        at = c.get_timer()
        assert at is not None
        now = at
        actions = c.handle_timer(now)
        for a in actions:
            if isinstance(a, DhcpSend):
                sent.append((now, a.dst, c.state))
        if any(isinstance(a, DhcpUnbound) for a in actions):
            break
    else:
        pytest.fail("the lease never expired")
    assert now == pytest.approx(1000.01)
    renewing = [t for t, dst, s in sent if s is DhcpState.RENEWING and dst == SERVER]
    rebinding = [t for t, dst, s in sent if s is DhcpState.REBINDING and dst == BCAST]
    # RENEWING: at T1, then half the time left until T2, but at least 60 s.
    assert renewing == pytest.approx([500.01, 687.51, 781.26, 841.26], abs=0.01)
    # REBINDING from T2, then half the time left until expiry, at least 60 s.
    assert rebinding == pytest.approx([875.01, 937.51, 997.51], abs=0.01)
    assert c.state is DhcpState.SELECTING
    assert c.lease is None


def test_ack_while_rebinding_rebinds() -> None:
    c = client()
    bind(c, lease=1000)
    for _ in range(10):
        at = c.get_timer()
        assert at is not None
        actions = c.handle_timer(at)
        if c.state is DhcpState.REBINDING:
            break
    request = only_send(actions).message
    (bound,) = c.input(reply(request, ACK, 1000), at + 1)
    assert isinstance(bound, DhcpBound) and bound.renewed and c.state is DhcpState.BOUND


def test_nak_while_renewing_unbinds() -> None:
    c = client()
    bind(c)
    renew = only_send(c.renew(10.0)).message
    actions = c.input(reply(renew, NAK), 10.1)
    assert isinstance(actions[0], DhcpUnbound)
    assert c.lease is None and c.state is DhcpState.SELECTING


def test_server_timers_are_used_and_clamped() -> None:
    c = client()
    discover = only_send(c.start(0.0)).message
    request = only_send(c.input(reply(discover, OFFER), 0.0)).message
    t = ((58, (50).to_bytes(4, "big")), (59, (5000).to_bytes(4, "big")))
    (bound,) = c.input(reply(request, ACK, 100, t), 0.0)
    assert isinstance(bound, DhcpBound)
    assert (bound.lease.renewal_time, bound.lease.rebinding_time) == (50, 100)


def test_release() -> None:
    c = client()
    bind(c)
    actions = c.release(5.0)
    send = only_send(actions)
    assert send.message.message_type == RELEASE and send.dst == SERVER
    assert send.message.ciaddr == OFFERED
    assert c.state is DhcpState.STOPPED and c.get_timer() is None


Reply = tuple[int, tuple[tuple[int, bytes], ...], bytes, bool]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from((OFFER, ACK, NAK, 1, 99)),
            options,
            addr,
            st.booleans(),
        ),
        max_size=8,
    )
)
def test_any_replies_in_any_state_never_raise(
    replies: list[tuple[int, object, bytes, bool]],
) -> None:
    c = client()
    now = 0.0
    sent = only_send(c.start(now)).message
    for kind, opts, yiaddr, our_xid in replies:
        now += 1.0
        message = DhcpMessage(
            2,
            sent.xid if our_xid else sent.xid ^ 1,
            MAC,
            ((53, bytes((kind,))), *opts),
            yiaddr=yiaddr,
        )
        for action in c.input(message, now):
            if isinstance(action, DhcpSend):
                sent = action.message
            elif isinstance(action, DhcpBound):
                assert 0 <= action.lease.prefix <= 32
                assert action.lease.t1 <= action.lease.t2 <= action.lease.expires
        at = c.get_timer()
        if at is not None and at <= now + 100:
            now = max(now, at)
            for action in c.handle_timer(now):
                if isinstance(action, DhcpSend):
                    sent = action.message


def test_decline_then_discover_again_after_ten_seconds() -> None:
    c = client()
    bind(c)
    actions = c.decline(2.0)
    send = only_send(actions)
    msg = send.message
    assert msg.message_type == DECLINE and send.dst == BCAST
    assert msg.option(50) == OFFERED and msg.option(54) == SERVER
    assert any(isinstance(a, DhcpUnbound) for a in actions)
    assert c.lease is None and c.state is DhcpState.INIT
    assert c.get_timer() == 12.0
    again = only_send(c.handle_timer(12.0)).message
    assert again.message_type == DISCOVER and c.state is DhcpState.SELECTING
    assert c.stats.declines == 1
