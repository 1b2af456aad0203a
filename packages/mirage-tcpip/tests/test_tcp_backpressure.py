"""A peer that stops reading does not make either side buffer without bound: the
receiver's buffer fills to its limit and its window closes, the sender's buffer
fills to its limit and ``send`` takes nothing more (the writer's backpressure), the
sender probes the zero window, and everything flows again once the reader reads."""

from __future__ import annotations

import random

from mirage.net import LinkConfig
from mirage.tcpip.sim import SimPair
from mirage.tcpip.tcp import State, TcpConfig

BUF = 16 * 1024


def run_until(pair: SimPair, t: float) -> None:
    while pair.now < t:
        if not pair.step():
            break


def test_reader_that_stops_bounds_both_buffers() -> None:
    config = TcpConfig(send_buffer=BUF, recv_buffer=BUF)
    pair = SimPair(LinkConfig(delay=0.01), LinkConfig(delay=0.01), config=config)
    client = pair.client
    client.open(pair.now)
    pair.flush()
    run_until(pair, 0.1)
    assert client.state is State.ESTABLISHED
    data = random.Random(1).randbytes(1 << 20)
    sent = 0
    refused = 0
    peak_unsent = 0
    windows: list[int] = []
    # The writer keeps writing for a minute of virtual time; nobody reads.
    while pair.now < 60.0:
        n = client.send(data[sent : sent + 4096], pair.now)
        sent += n
        refused += n == 0
        peak_unsent = max(peak_unsent, client.unsent)
        pair.flush()
        server = pair.server
        assert server is not None
        assert server.readable <= BUF
        assert len(server._ooo) == 0 or sum(map(len, server._ooo.values())) <= BUF
        windows.append(client.snd_wnd)
        if not pair.step():
            break
    server = pair.server
    assert server is not None
    assert sent <= 2 * BUF + 1  # what fits in the receiver's and the sender's buffers
    assert peak_unsent <= BUF
    assert refused > 0 and client.send_space == 0  # the writer is held back
    assert server.readable == BUF and windows[-1] == 0  # the window closed
    assert client.state is State.ESTABLISHED and server.state is State.ESTABLISHED
    probes = client.stats_retransmits
    assert probes > 0  # zero-window probes kept the connection alive
    # The reader comes back: everything arrives, in order.
    got = bytearray()
    total = len(data)
    while len(got) < total and pair.now < 600.0:
        if sent < total:
            sent += client.send(data[sent : sent + 4096], pair.now)
            if sent == total:
                client.shutdown(pair.now)
        got += server.read(pair.now)
        pair.flush()
        if server.readable:
            continue
        if not pair.step():
            break
    assert bytes(got) == data


def test_receive_buffer_bounds_out_of_order_data() -> None:
    config = TcpConfig(send_buffer=BUF, recv_buffer=BUF)
    pair = SimPair(
        LinkConfig(delay=0.01, reorder=0.3, loss=0.05), LinkConfig(delay=0.01), config=config
    )
    client = pair.client
    client.open(pair.now)
    pair.flush()
    data = random.Random(2).randbytes(256 * 1024)
    sent = 0
    while pair.now < 30.0:
        if client.state is State.ESTABLISHED:
            sent += client.send(data[sent : sent + 4096], pair.now)
        pair.flush()
        server = pair.server
        if server is not None:
            held = server.readable + sum(map(len, server._ooo.values()))
            assert held <= BUF  # never more than the advertised buffer
        if not pair.step():
            break
    assert client.unsent <= BUF
