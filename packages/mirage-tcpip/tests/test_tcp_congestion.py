"""Pluggable congestion control (``TcpConfig.congestion``) and RACK-style
time-based loss detection (``TcpConfig.rack``), in virtual time."""

from __future__ import annotations

import random

import pytest

from mirage.net import LinkConfig
from mirage.tcpip.sim import transfer
from mirage.tcpip.tcp import ACK, SYN, Connection, State, TcpConfig, TcpSegment

ISS, PEER = 1000, 5000
MSS = 1000


def established(config: TcpConfig) -> Connection:
    c = Connection(40000, 80, ISS, 0.0, config)
    c.open(0.0)
    c.take_segments()
    synack = TcpSegment(80, 40000, PEER, ISS + 1, SYN | ACK, 65535, mss=MSS, sack_permitted=True)
    c.receive(synack, 0.1)
    c.take_segments()
    assert c.state is State.ESTABLISHED and c.sack_enabled
    return c


def s(i: int) -> int:
    return ISS + 1 + i * MSS


def ack(
    c: Connection, now: float, *blocks: tuple[int, int], to: int | None = None
) -> list[TcpSegment]:
    a = c.snd_una if to is None else to
    c.receive(TcpSegment(80, 40000, PEER + 1, a, ACK, 65535, b"", sack=tuple(blocks)), now)
    return c.take_segments()


def test_unknown_congestion_control_is_refused() -> None:
    with pytest.raises(ValueError, match="congestion"):
        TcpConfig(congestion="bbr")


def test_none_sends_the_whole_peer_window_at_once() -> None:
    cubic = established(TcpConfig(timestamps=False, window_scaling=False))
    cubic.send(bytes(40 * MSS), 0.1)
    assert len(cubic.take_segments()) == 10  # RFC 6928 initial window
    none = established(TcpConfig(timestamps=False, window_scaling=False, congestion="none"))
    none.send(bytes(40 * MSS), 0.1)
    out = none.take_segments()
    assert sum(len(x.payload) for x in out) == 40 * MSS  # only the peer's window limits


def test_none_keeps_its_window_through_loss_and_timeout() -> None:
    c = established(TcpConfig(timestamps=False, window_scaling=False, congestion="none"))
    c.send(bytes(20 * MSS), 0.1)
    assert len(c.take_segments()) == 20
    cwnd = c.cwnd
    # segment 0 lost: three SACKs above it start recovery, the hole goes at once
    ack(c, 0.3, (s(1), s(2)))
    ack(c, 0.3, (s(1), s(3)))
    out = ack(c, 0.3, (s(1), s(4)))
    assert s(0) in [x.seq for x in out]
    assert c.in_recovery and c.cwnd == cwnd and c.ssthresh >= cwnd
    ack(c, 0.4, to=s(20))
    assert not c.in_recovery and c.cwnd == cwnd
    # a timeout goes back to SND.UNA with the whole window, not one segment
    c.send(bytes(5 * MSS), 0.5)
    assert len(c.take_segments()) == 5
    c.handle_timer(c.get_timer() or 0.0)
    assert c.stats_timeouts == 1 and len(c.take_segments()) == 5


@pytest.mark.parametrize("congestion", ["none", "newreno", "cubic"])
@pytest.mark.parametrize("rack", [False, True])
def test_transfers_byte_exact_under_loss(congestion: str, rack: bool) -> None:
    data = random.Random(7).randbytes(200_000)
    config = TcpConfig(send_buffer=16384, recv_buffer=16384, congestion=congestion, rack=rack)
    for loss in (0.05, 0.2):
        result = transfer(
            data, link=LinkConfig(loss=loss, delay=0.02), seed=3, config=config, time_limit=1e5
        )
        assert result.completed and result.received == data


def test_rack_repairs_a_loss_with_fewer_than_three_sacks_before_the_rto() -> None:
    cfg = TcpConfig(timestamps=False, window_scaling=False, congestion="none", rack=True)
    c = established(cfg)
    c.send(bytes(3 * MSS), 0.1)
    assert len(c.take_segments()) == 3
    # An RTT sample of 0.1 s from an earlier exchange.
    c.srtt, c._min_rtt, c.rto = 0.1, 0.1, 1.0
    # Segment 1 is lost; 0 and 2 arrive: one SACK above the hole, no DupThresh.
    out = ack(c, 0.2, (s(2), s(3)), to=s(1))
    assert out == [] and not c.in_recovery
    timer = c.get_timer()
    # The reorder timer: sent at 0.1, RTT 0.1 plus a quarter of the minimum RTT.
    assert timer is not None and timer == pytest.approx(0.1 + 0.1 + 0.025)
    c.handle_timer(timer)
    out = c.take_segments()
    assert [x.seq for x in out] == [s(1)] and c.stats_timeouts == 0 and c.in_recovery
    ack(c, 0.4, to=s(3))
    assert not c.in_recovery and c.snd_una == s(3)


def test_without_rack_the_same_loss_waits_for_the_rto() -> None:
    c = established(TcpConfig(timestamps=False, window_scaling=False, congestion="none"))
    c.send(bytes(3 * MSS), 0.1)
    c.take_segments()
    c.srtt, c.rto = 0.1, 1.0
    ack(c, 0.2, (s(2), s(3)), to=s(1))
    timer = c.get_timer()
    assert timer is not None and timer == pytest.approx(0.2 + c.rto)  # the RTO, nothing sooner
    c.handle_timer(timer)
    assert c.stats_timeouts == 1


def test_tail_loss_probe_resends_the_last_segment_after_two_srtt() -> None:
    c = established(TcpConfig(timestamps=False, window_scaling=False, rack=True))
    c.srtt, c._min_rtt, c.rto = 0.1, 0.1, 1.0
    c.send(bytes(3 * MSS), 0.1)
    assert len(c.take_segments()) == 3
    timer = c.get_timer()
    assert timer == pytest.approx(0.1 + 2 * 0.1)  # PTO: 2 SRTT, well before the RTO
    c.handle_timer(timer)
    (probe,) = c.take_segments()
    assert probe.seq == s(2) and len(probe.payload) == MSS  # the last segment again
    assert c.stats_tail_probes == 1 and c.stats_timeouts == 0
    # One probe per episode: next comes the RTO, not another probe.
    timer = c.get_timer()
    assert timer == pytest.approx(0.3 + c.rto)
    # The peer SACKs the probe: by RACK the two segments sent before it are lost
    # (their expected ACKs are overdue), so recovery starts on this one ACK.
    out = ack(c, 0.41, (s(2), s(3)), to=s(0))
    assert [x.seq for x in out][:1] == [s(0)] and c.in_recovery and c.stats_timeouts == 0


def test_tail_loss_probe_sends_new_data_when_the_window_allows() -> None:
    c = established(TcpConfig(timestamps=False, window_scaling=False, rack=True))
    c.srtt, c._min_rtt, c.rto = 0.1, 0.1, 1.0
    c.cwnd = 2 * MSS  # the congestion window holds back the third segment
    c.send(bytes(3 * MSS), 0.1)
    assert len(c.take_segments()) == 2
    c.handle_timer(c.get_timer() or 0.0)
    (probe,) = c.take_segments()
    assert probe.seq == s(2) and c.snd_max == s(3) and c.stats_retransmits == 0


def test_one_segment_out_waits_for_a_delayed_ack_too() -> None:
    c = established(TcpConfig(timestamps=False, window_scaling=False, rack=True))
    c.srtt, c._min_rtt, c.rto = 0.1, 0.1, 1.0
    c.send(bytes(MSS), 0.1)
    c.take_segments()
    assert c.get_timer() == pytest.approx(0.1 + 0.2 + 0.2)  # 2 SRTT + WCDelAckT


def test_no_probe_without_rack() -> None:
    c = established(TcpConfig(timestamps=False, window_scaling=False))
    c.srtt, c.rto = 0.1, 1.0
    c.send(bytes(3 * MSS), 0.1)
    c.take_segments()
    assert c.get_timer() == pytest.approx(1.1)  # the RTO alone
