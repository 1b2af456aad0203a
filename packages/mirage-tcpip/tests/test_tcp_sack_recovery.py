"""RFC 6675 SACK-based loss recovery in the core, in virtual time: the scoreboard,
IsLost, pipe, NextSeg's rules (lost holes first, new data, other holes, one rescue
retransmission), the end of recovery, and recovery over lossy links."""

from __future__ import annotations

import random

import pytest

from mirage.net import LinkConfig
from mirage.tcpip.sim import transfer
from mirage.tcpip.tcp import ACK, SYN, Connection, State, TcpConfig, TcpSegment

ISS, PEER = 1000, 5000
MSS = 1000
CFG = TcpConfig(mss=1460, timestamps=False, window_scaling=False, congestion="newreno")


def seg(flags: int, seq: int, ack: int = 0, sack: tuple[tuple[int, int], ...] = ()) -> TcpSegment:
    return TcpSegment(80, 40000, seq, ack, flags, 65535, b"", mss=None, sack=sack)


def sending(n: int) -> Connection:
    """An established connection with ``n`` full segments in flight."""
    c = Connection(40000, 80, ISS, 0.0, CFG)
    c.open(0.0)
    c.take_segments()
    synack = TcpSegment(80, 40000, PEER, ISS + 1, SYN | ACK, 65535, mss=MSS, sack_permitted=True)
    c.receive(synack, 0.1)
    c.take_segments()
    assert c.state is State.ESTABLISHED and c.sack_enabled
    c.send(bytes(n * MSS), 0.1)
    out = c.take_segments()
    assert [s.seq for s in out] == [ISS + 1 + i * MSS for i in range(n)]
    return c


def s(i: int) -> int:
    """Sequence number of segment ``i`` (0-based)."""
    return ISS + 1 + i * MSS


def dupack(c: Connection, *blocks: tuple[int, int], now: float = 0.3) -> list[TcpSegment]:
    c.receive(seg(ACK, PEER + 1, c.snd_una, tuple(blocks)), now)
    return c.take_segments()


def test_is_lost_and_pipe() -> None:
    c = sending(8)
    dupack(c, (s(1), s(2)))
    assert not c._is_lost(s(0))  # one segment SACKed above: not yet
    dupack(c, (s(1), s(3)))
    assert not c._is_lost(s(0))  # two: still not (DupThresh 3)
    # Pipe: everything not SACKed and not lost.
    assert c._pipe() == 8 * MSS - 2 * MSS
    c._take_sack(((s(1), s(4)),), c.snd_una)
    assert c._is_lost(s(0))  # three segments SACKed above
    assert not c._is_lost(s(4))  # nothing SACKed above the tail
    assert c._pipe() == 8 * MSS - 3 * MSS - MSS  # the lost first segment is out of pipe


def test_three_dupacks_retransmit_the_first_hole_once() -> None:
    c = sending(8)
    assert dupack(c, (s(1), s(2))) == []
    assert dupack(c, (s(1), s(3))) == []
    out = dupack(c, (s(1), s(4)))
    assert c.in_recovery and out and out[0].seq == s(0)
    later = dupack(c, (s(1), s(5)))
    assert all(x.seq != s(0) for x in later)  # never the same hole twice
    assert c.stats_fast_retransmits == 1


def test_lost_holes_before_others_and_each_once() -> None:
    c = sending(10)
    dupack(c, (s(1), s(2)))
    dupack(c, (s(3), s(4)), (s(1), s(2)))
    out = dupack(c, (s(3), s(6)), (s(1), s(2)))
    assert [x.seq for x in out][:1] == [s(0)]
    sent = [x.seq for x in out]
    sent += [x.seq for x in dupack(c, (s(3), s(8)), (s(1), s(2)))]
    sent += [x.seq for x in dupack(c, (s(3), s(9)), (s(1), s(2)))]
    assert s(2) in sent  # the second hole, lost once enough is SACKed above it
    assert sent.count(s(0)) == 1 and sent.count(s(2)) == 1


def test_rescue_retransmission_once_per_recovery() -> None:
    c = sending(6)
    dupack(c, (s(1), s(2)))
    dupack(c, (s(1), s(3)))
    out = dupack(c, (s(1), s(4)))
    out += dupack(c, (s(1), s(5)))
    retransmitted = [x.seq for x in out]
    # The tail (segment 5) is not lost (nothing SACKed above it): NextSeg rule 4
    # sends it once as the rescue retransmission.
    assert retransmitted.count(s(5)) == 1
    assert c._rescue is not None
    more = [x.seq for x in dupack(c, (s(1), s(5)))]
    assert s(5) not in more


def test_full_ack_ends_recovery_with_cwnd_at_ssthresh() -> None:
    c = sending(8)
    for k in (2, 3, 4):
        dupack(c, (s(1), s(k)))
    assert c.in_recovery
    ssthresh = c.ssthresh
    c.receive(seg(ACK, PEER + 1, s(8)), 0.4)
    assert (c.in_recovery, c.cwnd) == (False, ssthresh)


def test_partial_ack_keeps_recovering() -> None:
    c = sending(8)
    dupack(c, (s(1), s(2)))
    dupack(c, (s(3), s(4)), (s(1), s(2)))
    dupack(c, (s(3), s(6)), (s(1), s(2)))
    c.receive(seg(ACK, PEER + 1, s(2), ((s(3), s(6)),)), 0.4)  # partial
    assert c.in_recovery
    out = c.take_segments()
    assert s(2) in [x.seq for x in out] or c._high_rxt > s(2)


@pytest.mark.parametrize("loss", [0.02, 0.1, 0.3])
def test_sack_recovery_over_lossy_links(loss: float) -> None:
    data = random.Random(3).randbytes(128 * 1024)
    link = LinkConfig(loss=loss, delay=0.02)
    config = TcpConfig(send_buffer=64 * 1024, recv_buffer=64 * 1024)
    for seed in range(3):
        r = transfer(data, link=link, seed=seed, config=config)
        assert r.completed and r.received == data
        assert r.client.sack_enabled
        if loss >= 0.1:
            assert r.client.stats_fast_retransmits > 0
