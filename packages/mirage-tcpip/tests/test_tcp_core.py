"""The TCP core, one behaviour at a time: segments in, segments out, virtual time."""

from __future__ import annotations

import itertools

import pytest

from mirage.tcpip.tcp import (
    ACK,
    FIN,
    PSH,
    RST,
    SYN,
    Connection,
    IsnGenerator,
    State,
    TcpConfig,
    TcpSegment,
)

ISS, PEER_ISS = 1000, 5000
CFG = TcpConfig(mss=1460, timestamps=False, sack=False, window_scaling=False)


def seg(
    flags: int, seq: int, ack: int = 0, payload: bytes = b"", window: int = 65535, **kw: object
) -> TcpSegment:
    return TcpSegment(80, 40000, seq, ack, flags, window, payload, **kw)  # type: ignore[arg-type]


def established(config: TcpConfig = CFG) -> Connection:
    c = Connection(40000, 80, ISS, 0.0, config)
    c.open(0.0)
    (syn,) = c.take_segments()
    assert syn.flags == SYN and syn.seq == ISS and syn.mss == config.mss
    c.receive(seg(SYN | ACK, PEER_ISS, ISS + 1, mss=1460), 0.1)
    (ack,) = c.take_segments()
    assert ack.flags == ACK and ack.ack == PEER_ISS + 1 and ack.seq == ISS + 1
    assert c.state is State.ESTABLISHED
    return c


def test_active_open_and_data() -> None:
    c = established()
    assert c.send(b"hello", 0.2) == 5
    (data,) = c.take_segments()
    assert data.payload == b"hello" and data.flags & PSH and data.seq == ISS + 1
    c.receive(seg(ACK, PEER_ISS + 1, ISS + 6, b"world"), 0.3)
    assert c.read(0.3) == b"world"
    assert c.take_segments() == []  # delayed ACK
    assert c.get_timer() == pytest.approx(0.3 + CFG.delayed_ack)
    c.handle_timer(c.get_timer() or 0)
    (ack,) = c.take_segments()
    assert ack.ack == PEER_ISS + 6


def test_every_second_segment_is_acked_at_once() -> None:
    c = established()
    c.receive(seg(ACK, PEER_ISS + 1, ISS + 1, b"a" * 1460), 0.2)
    assert c.take_segments() == []
    c.receive(seg(ACK, PEER_ISS + 1461, ISS + 1, b"b" * 1460), 0.2)
    (ack,) = c.take_segments()
    assert ack.ack == PEER_ISS + 2921


def test_passive_open_and_rst_on_bad_ack() -> None:
    s = Connection(80, 40000, ISS, 0.0, CFG)
    s.accept(seg(SYN, PEER_ISS, mss=1200), 0.0)
    (synack,) = s.take_segments()
    assert synack.flags == SYN | ACK and synack.ack == PEER_ISS + 1
    assert s.send_mss == 1200
    s.receive(seg(ACK, PEER_ISS + 1, ISS + 99), 0.1)  # unacceptable ACK
    (rst,) = s.take_segments()
    assert rst.flags == RST and rst.seq == ISS + 99
    s.receive(seg(ACK, PEER_ISS + 1, ISS + 1), 0.1)
    assert s.state is State.ESTABLISHED


def test_simultaneous_open() -> None:
    a = Connection(40000, 80, ISS, 0.0, CFG)
    b = Connection(80, 40000, PEER_ISS, 0.0, CFG)
    a.open(0.0)
    b.open(0.0)
    (syn_a,), (syn_b,) = a.take_segments(), b.take_segments()
    a.receive(syn_b, 0.1)
    b.receive(syn_a, 0.1)
    assert a.state is b.state is State.SYN_RECEIVED
    (sa_a,), (sa_b,) = a.take_segments(), b.take_segments()
    assert sa_a.flags == sa_b.flags == SYN | ACK
    a.receive(sa_b, 0.2)
    b.receive(sa_a, 0.2)
    assert a.state is b.state is State.ESTABLISHED


def test_simultaneous_close_and_time_wait() -> None:
    a = Connection(40000, 80, ISS, 0.0, CFG)
    b = Connection(80, 40000, PEER_ISS, 0.0, CFG)
    a.open(0.0)
    b.accept(a.take_segments()[0], 0.0)
    a.receive(b.take_segments()[0], 0.1)
    b.receive(a.take_segments()[0], 0.1)
    a.close(1.0)
    b.close(1.0)
    (fa,), (fb,) = a.take_segments(), b.take_segments()
    assert fa.fin and fb.fin
    assert a.state is b.state is State.FIN_WAIT_1
    a.receive(fb, 1.1)
    b.receive(fa, 1.1)
    assert a.state is b.state is State.CLOSING
    (aa,), (ab,) = a.take_segments(), b.take_segments()
    a.receive(ab, 1.2)
    b.receive(aa, 1.2)
    assert a.state is b.state is State.TIME_WAIT
    assert a.get_timer() == pytest.approx(1.2 + 2 * CFG.msl)
    a.handle_timer(1.2 + 2 * CFG.msl)
    assert a.state is State.CLOSED and a.error is None


def test_time_wait_acks_a_retransmitted_fin() -> None:
    c = established()
    c.shutdown(1.0)
    (fin,) = c.take_segments()
    c.receive(seg(ACK | FIN, PEER_ISS + 1, fin.seq + 1), 1.1)
    assert c.state is State.TIME_WAIT
    c.take_segments()
    c.receive(seg(ACK | FIN, PEER_ISS + 1, fin.seq + 1), 5.0)
    (ack,) = c.take_segments()
    assert ack.ack == PEER_ISS + 2
    assert c.get_timer() == pytest.approx(5.0 + 2 * CFG.msl)


def test_passive_close() -> None:
    c = established()
    c.receive(seg(ACK | FIN, PEER_ISS + 1, ISS + 1), 1.0)
    assert c.state is State.CLOSE_WAIT and c.eof
    c.take_segments()
    c.close(1.1)
    (fin,) = c.take_segments()
    assert c.state is State.LAST_ACK and fin.fin
    c.receive(seg(ACK, PEER_ISS + 2, fin.seq + 1), 1.2)
    assert c.state is State.CLOSED and c.error is None


def test_rfc5961_rst_checks() -> None:
    c = established()
    c.receive(seg(RST, PEER_ISS + 100), 1.0)  # in window, not exact: challenge ACK
    (challenge,) = c.take_segments()
    assert challenge.flags == ACK and challenge.ack == PEER_ISS + 1
    assert c.state is State.ESTABLISHED
    c.receive(seg(RST, PEER_ISS + 10_000_000), 1.0)  # outside: silently dropped
    assert c.take_segments() == []
    c.receive(seg(RST, PEER_ISS + 1), 1.0)  # exact: reset
    assert c.state is State.CLOSED and c.error == "connection reset by peer"


def test_rfc5961_syn_gets_a_throttled_challenge_ack() -> None:
    c = established(TcpConfig(timestamps=False, sack=False, challenge_acks_per_second=3))
    for _ in range(10):
        c.receive(seg(SYN, PEER_ISS + 50), 1.0)
    assert len(c.take_segments()) == 3
    assert c.state is State.ESTABLISHED
    c.receive(seg(SYN, PEER_ISS + 50), 2.5)
    assert len(c.take_segments()) == 1


def test_ack_of_unsent_data_is_answered_and_dropped() -> None:
    c = established()
    c.receive(seg(ACK, PEER_ISS + 1, ISS + 5000, b"data"), 1.0)
    (ack,) = c.take_segments()
    assert ack.ack == PEER_ISS + 1 and c.readable == 0


def test_rto_backoff_and_give_up() -> None:
    c = established(TcpConfig(timestamps=False, sack=False, max_retries=3))
    c.send(b"x" * 100, 1.0)
    c.take_segments()
    assert c.get_timer() == pytest.approx(2.0)  # RFC 6298: 1 s before any sample
    times = []
    while c.state is not State.CLOSED:
        t = c.get_timer()
        assert t is not None
        c.handle_timer(t)
        times.append(t)
        c.take_segments()
    assert [round(b - a, 3) for a, b in itertools.pairwise(times)] == [2.0, 4.0, 8.0]
    assert c.error == "timed out"


def test_rtt_estimate() -> None:
    c = established(
        TcpConfig(mss=1460, timestamps=False, sack=False, window_scaling=False, rto_min=1.0)
    )
    c.send(b"x" * 100, 1.0)
    c.take_segments()
    c.receive(seg(ACK, PEER_ISS + 1, ISS + 101), 1.3)
    assert c.srtt == pytest.approx(0.3)
    assert c.rto == pytest.approx(1.0)  # 0.3 + 4 * 0.15 = 0.9, raised to rto_min


def test_fast_retransmit_and_newreno() -> None:
    c = established()
    c.send(b"x" * 1460 * 8, 1.0)
    segs = c.take_segments()
    assert len(segs) == 8  # initial window of 10 segments
    for _ in range(3):
        c.receive(seg(ACK, PEER_ISS + 1, ISS + 1), 1.1)
    (rtx,) = c.take_segments()
    assert rtx.seq == ISS + 1 and len(rtx.payload) == 1460
    assert c.in_recovery and c.stats_fast_retransmits == 1
    # partial ACK: the next hole goes out at once (RFC 6582)
    c.receive(seg(ACK, PEER_ISS + 1, ISS + 1 + 1460 * 3), 1.2)
    out = c.take_segments()
    assert out[0].seq == ISS + 1 + 1460 * 3
    c.receive(seg(ACK, PEER_ISS + 1, ISS + 1 + 1460 * 8), 1.3)
    assert not c.in_recovery and c.cwnd <= c.ssthresh + c.send_mss


def test_nagle() -> None:
    c = established()
    c.send(b"a", 1.0)
    assert len(c.take_segments()) == 1
    c.send(b"b", 1.0)
    c.send(b"c", 1.0)
    assert c.take_segments() == []  # a small segment is in flight
    c.receive(seg(ACK, PEER_ISS + 1, ISS + 2), 1.1)
    (both,) = c.take_segments()
    assert both.payload == b"bc"
    nd = established(TcpConfig(timestamps=False, sack=False, nodelay=True))
    nd.send(b"a", 1.0)
    nd.send(b"b", 1.0)
    assert len(nd.take_segments()) == 2


def test_zero_window_probe() -> None:
    c = established()
    c.receive(seg(ACK, PEER_ISS + 1, ISS + 1, window=0), 1.0)
    c.send(b"x" * 10, 1.0)
    assert c.take_segments() == []
    t = c.get_timer()
    assert t is not None
    c.handle_timer(t)
    (probe,) = c.take_segments()
    assert len(probe.payload) == 1
    c.receive(seg(ACK, PEER_ISS + 1, ISS + 2, window=1000), t + 0.1)  # took the probe
    out = c.take_segments()
    assert b"".join(s.payload for s in out) == b"x" * 9


def test_receive_window_and_reassembly() -> None:
    c = established(TcpConfig(timestamps=False, sack=False, recv_buffer=4000, window_scaling=False))
    c.receive(seg(ACK, PEER_ISS + 1 + 1000, ISS + 1, b"B" * 1000), 1.0)
    (dup,) = c.take_segments()
    assert dup.ack == PEER_ISS + 1  # out of order: immediate duplicate ACK
    c.receive(seg(ACK, PEER_ISS + 1, ISS + 1, b"A" * 1000), 1.0)
    (ack,) = c.take_segments()
    assert ack.ack == PEER_ISS + 2001 and ack.window == 2000
    # beyond the window: trimmed to it
    c.receive(seg(ACK, PEER_ISS + 2001, ISS + 1, b"C" * 3000), 1.0)
    assert c.readable == 4000
    assert c.read(1.0) == b"A" * 1000 + b"B" * 1000 + b"C" * 2000


def test_sack_blocks_are_reported() -> None:
    cfg = TcpConfig(timestamps=True, sack=True)
    c = Connection(40000, 80, ISS, 0.0, cfg)
    c.open(0.0)
    (syn,) = c.take_segments()
    assert syn.sack_permitted and syn.wscale is not None and syn.timestamp is not None
    c.receive(
        seg(
            SYN | ACK,
            PEER_ISS,
            ISS + 1,
            mss=1460,
            sack_permitted=True,
            wscale=2,
            timestamp=(7, syn.timestamp[0]),
        ),
        0.1,
    )
    c.take_segments()
    assert c.sack_enabled and c.ts_enabled and c.snd_wscale == 2
    c.receive(seg(ACK, PEER_ISS + 101, ISS + 1, b"x" * 100, timestamp=(8, 0)), 0.2)
    (ack,) = c.take_segments()
    assert ack.sack == ((PEER_ISS + 101, PEER_ISS + 201),)


def test_isn_rfc6528() -> None:
    gen = IsnGenerator(b"k" * 16)
    a = gen(b"\x0a\0\0\x01", 1, b"\x0a\0\0\x02", 2, 0.0)
    assert gen(b"\x0a\0\0\x01", 1, b"\x0a\0\0\x02", 2, 1.0) == (a + 250_000) & 0xFFFFFFFF
    assert gen(b"\x0a\0\0\x01", 1, b"\x0a\0\0\x02", 3, 0.0) != a
