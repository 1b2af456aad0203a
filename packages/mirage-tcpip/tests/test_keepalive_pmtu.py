"""TCP keepalive (RFC 1122 4.2.3.6) and path MTU discovery (RFC 1191), segment by
segment in virtual time, then through the stack with an ICMP error injected."""

from __future__ import annotations

import asyncio

import pytest
from test_stack import read_all, two_stacks
from test_tcp_core import CFG, ISS, PEER_ISS, established, seg

from mirage.core.testing import run
from mirage.tcpip.ethernet import ETHERTYPE_IPV4, EthernetFrame
from mirage.tcpip.icmp import CODE_FRAG_NEEDED, PROTO_ICMP, IcmpMessage
from mirage.tcpip.ipv4 import Ipv4Packet
from mirage.tcpip.stack import TcpFlow
from mirage.tcpip.tcp import ACK, RST, SYN, Connection, State, TcpConfig

# -- keepalive -----------------------------------------------------------------------


def test_keepalive_is_off_by_default() -> None:
    c = established()
    assert c.get_timer() is None


def test_keepalive_probes_and_answers() -> None:
    c = established()
    c.set_keepalive(1.0, idle=10, interval=2, count=3)
    assert c.get_timer() == pytest.approx(11.0)
    c.handle_timer(11.0)
    (probe,) = c.take_segments()
    assert probe.flags == ACK and probe.payload == b""
    assert probe.seq == ISS  # SND.NXT - 1: the peer must answer with an ACK
    assert probe.ack == PEER_ISS + 1
    assert c.get_timer() == pytest.approx(13.0)
    # The answer: any segment from the peer restarts the idle time.
    c.receive(seg(ACK, PEER_ISS + 1, ISS + 1), 11.5)
    assert c.take_segments() == []
    assert c.keepalive_probes == 0
    assert c.get_timer() == pytest.approx(21.5)
    assert c.state is State.ESTABLISHED


def test_unanswered_probes_reset_the_connection() -> None:
    c = established()
    c.set_keepalive(0.0, idle=10, interval=2, count=3)
    times = []
    while c.state is not State.CLOSED:
        at = c.get_timer()
        assert at is not None
        c.handle_timer(at)
        times.append((at, [s.flags for s in c.take_segments()]))
    assert times == [
        (10.0, [ACK]),
        (12.0, [ACK]),
        (14.0, [ACK]),
        (16.0, [RST | ACK]),
    ]
    assert c.error == "timed out (keepalive)"
    assert c.stats_keepalives == 3


def test_keepalive_waits_while_data_is_in_flight() -> None:
    c = established()
    c.set_keepalive(0.0, idle=5, interval=1, count=2)
    c.send(b"x" * 100, 0.5)
    c.take_segments()
    # The retransmission timer watches the peer; keepalive stays quiet at 5 s.
    for _ in range(3):
        at = c.get_timer()
        assert at is not None
        c.handle_timer(at)
        assert all(s.payload for s in c.take_segments())
    assert c.stats_keepalives == 0


def test_keepalive_from_the_config_and_switched_off() -> None:
    cfg = TcpConfig(
        mss=1460,
        timestamps=False,
        sack=False,
        window_scaling=False,
        keepalive=True,
        keepalive_idle=30,
    )
    c = established(cfg)
    assert c.get_timer() == pytest.approx(30.1)  # armed by the SYN-ACK at 0.1
    c.set_keepalive(1.0, False)
    assert c.get_timer() is None


# -- path MTU --------------------------------------------------------------------------


def test_fragmentation_needed_lowers_the_mss_and_resends_at_once() -> None:
    c = established()
    data = (bytes(range(256)) * 23)[:5840]  # four segments of 1460
    c.send(data, 0.2)
    first = c.take_segments()
    assert [len(s.payload) for s in first] == [1460, 1460, 1460, 1460]
    ssthresh, cwnd = c.ssthresh, c.cwnd
    assert c.path_mtu_changed(1280, 0.25)
    assert c.send_mss == 1240 and c.path_mtu == 1280
    again = c.take_segments()
    assert [len(s.payload) for s in again] == [1240, 1240, 1240, 1240, 880]
    assert again[0].seq == ISS + 1
    assert b"".join(s.payload for s in again) == data
    # Not congestion: the window is left alone.
    assert (c.ssthresh, c.cwnd) == (ssthresh, cwnd)
    # Later sends use the new size; a larger "MTU" changes nothing.
    assert not c.path_mtu_changed(1400, 0.3)
    assert c.send_mss == 1240


def test_path_mtu_has_a_floor() -> None:
    c = established()
    assert c.path_mtu_changed(40, 0.2)
    assert c.send_mss == CFG.min_mss


def test_path_mtu_counts_the_timestamp_option() -> None:
    c = Connection(40000, 80, ISS, 0.0, TcpConfig(mss=1460))
    c.open(0.0)
    (syn,) = c.take_segments()
    assert syn.timestamp is not None
    c.receive(seg(SYN | ACK, PEER_ISS, ISS + 1, mss=1460, timestamp=(7, syn.timestamp[0])), 0.1)
    assert c.ts_enabled and c.send_mss == 1460 - 12
    assert c.path_mtu_changed(1280, 0.2)
    assert c.send_mss == 1280 - 40 - 12


# -- through the stack ------------------------------------------------------------------


def frag_needed(quoted: Ipv4Packet, mtu: int, router: bytes, to: bytes) -> bytes:
    message = IcmpMessage.unreachable(CODE_FRAG_NEEDED, quoted.encode(), mtu)
    return Ipv4Packet(router, to, PROTO_ICMP, message.encode()).encode()


def test_stack_handles_fragmentation_needed() -> None:
    payload = bytes(range(256)) * 2000

    async def main() -> None:
        a, b = await two_stacks()
        got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def handler(flow: TcpFlow) -> None:
            got.set_result(await read_all(flow))
            await flow.close()

        await b.tcp.listen(9000, handler)
        flow = await a.tcp.connect("10.1.0.2", 9000)
        conn = flow.conn
        local, sport, remote, dport = flow.quad
        before = conn.send_mss

        def inject(seq: int, mtu: int) -> None:
            quoted_tcp = (
                sport.to_bytes(2, "big")
                + dport.to_bytes(2, "big")
                + seq.to_bytes(4, "big")
                + bytes(12)
            )
            quoted = Ipv4Packet(local, remote, 6, quoted_tcp + bytes(1400), dont_fragment=True)
            frame = EthernetFrame(
                a.mac, b.mac, ETHERTYPE_IPV4, frag_needed(quoted, mtu, remote, local)
            )
            a._on_frame(frame.encode())

        # A forged error quoting a sequence number not in flight is ignored (RFC 5927).
        inject((conn.snd_una + 10**6) & 0xFFFFFFFF, 576)
        assert conn.send_mss == before and a.stats.pmtu_updates == 0
        await flow.write(payload[:100_000])
        inject(conn.snd_una & 0xFFFFFFFF, 1000)
        assert a.stats.pmtu_updates == 1
        assert conn.send_mss <= 1000 - 40
        await flow.write(payload[100_000:])
        await flow.shutdown()
        assert await asyncio.wait_for(got, 10) == payload
        # A new connection to the same destination starts with the lowered MTU.
        await b.tcp.listen(9001, lambda flow: flow.close())
        second = await a.tcp.connect("10.1.0.2", 9001)
        assert second.conn.path_mtu == 1000 and second.conn.send_mss <= 1000 - 40
        await a.disconnect()
        await b.disconnect()

    run(main())
