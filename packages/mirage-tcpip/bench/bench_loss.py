"""Loss recovery on a simulated link in virtual time, beside smoltcp's published table.

smoltcp's ``tests/netsim.rs`` moves 10 MiB over a link with 50 ms of delay each way
(100 ms RTT) and uniform random loss both ways, with socket buffers of 128 B to
32 KiB, and pins the throughput (bytes per virtual second) as a snapshot. We run the
same grid with two of our TCP cores (``mirage.tcpip.sim``, the links being
mirage-net's ``LinkModel``, the fault model of ``vnet``), send and receive buffers
of the cell's size, and count as netsim does: from time zero (the first SYN) until
the receiver has read every byte.

Each cell shows three figures:

- smoltcp's published figure (its snapshot, ``tests/snapshots/netsim__netsim.snap``);
- ours like-for-like: ``TcpConfig(congestion="none")``. smoltcp's netsim builds its
  sockets with the default congestion control, ``None``: the sender is limited only
  by its buffer and the peer's window. With ``"none"`` ours is too; everything else
  is our default (SACK with RFC 6675 recovery, timestamps, RTO floor 0.2 s, delayed
  ACK). The ratio printed is this figure over smoltcp's.
- ours with CUBIC, our default congestion control, for reference: on this grid it
  gives up throughput at large buffers and moderate loss, which is the point of
  congestion control on a shared path and says nothing about loss recovery.

Neither side gives up on a connection here (smoltcp's sockets have no timeout by
default; ours get 1,000 retries). All figures are deterministic: seeded loss,
virtual time; they do not depend on the machine. By default each cell moves 200
windows' worth (at least 64 KiB, at most 10 MiB; ``--full`` moves 10 MiB everywhere
as smoltcp does) and averages three seeds (one with ``--quick``, which also moves a
quarter as much). At 0 % loss the window bounds every stack at buffer / RTT (1,280
B/s for 128 bytes), so there a tie is the best anyone can do; and the cells near a
ratio of 1 move by a few per cent from seed to seed.

Run: ``python bench_loss.py [--full] [--quick]``.
"""

from __future__ import annotations

import random
import sys
import time

from mirage.net import LinkConfig
from mirage.tcpip.sim import SimPair
from mirage.tcpip.tcp import State, TcpConfig

FULL = "--full" in sys.argv
QUICK = "--quick" in sys.argv
BUFFERS = [128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768]
LOSSES = [0.0, 0.001, 0.01, 0.02, 0.05, 0.10, 0.20, 0.30]
SEEDS = 1 if QUICK else 3

# smoltcp tests/snapshots/netsim__netsim.snap (bytes per second), rows by buffer,
# columns by loss as in LOSSES.
SMOLTCP = {
    128: [1279.98, 1255.76, 1054.15, 886.36, 538.66, 227.84, 33.99, 7.18],
    256: [2559.91, 2507.27, 2100.03, 1770.30, 1070.71, 468.24, 66.71, 14.35],
    512: [5119.63, 5011.95, 4172.36, 3531.57, 2098.73, 942.38, 144.73, 29.45],
    1024: [10238.50, 10023.19, 8340.90, 7084.25, 4003.34, 1869.94, 290.74, 60.92],
    2048: [17535.11, 17171.82, 14093.50, 12063.90, 7205.27, 3379.12, 824.76, 131.54],
    4096: [35062.41, 33852.31, 27011.08, 22073.09, 13680.70, 7631.11, 1617.81, 302.65],
    8192: [77374.28, 72409.99, 58428.68, 48310.75, 29123.30, 14314.36, 2880.39, 551.60],
    16384: [161842.28, 159448.56, 141467.31, 127073.06, 78239.08, 38637.20, 7565.64, 1112.31],
    32768: [322944.88, 314313.90, 266384.37, 245985.29, 138762.29, 83162.99, 10739.10, 1951.95],
}


def config(buffer: int, congestion: str) -> TcpConfig:
    # smoltcp's sockets never give up by default (no timeout): at 30 % loss each way
    # a run of a dozen lost exchanges is rare but does happen, so neither do we.
    return TcpConfig(
        send_buffer=buffer,
        recv_buffer=buffer,
        congestion=congestion,
        max_retries=1000,
        syn_retries=1000,
    )


def run(data: bytes, link: LinkConfig, seed: int, config: TcpConfig) -> float:
    """Bytes per virtual second, counted as smoltcp's netsim counts: from time zero
    (the first SYN) until the receiver has read every byte (no FIN, no close)."""
    pair = SimPair(link, link, seed, config)
    client = pair.client
    client.open(pair.now)
    pair.flush()
    sent = got = 0
    while got < len(data):
        if client.state is State.ESTABLISHED and sent < len(data) and client.send_space:
            sent += client.send(data[sent : sent + client.send_space], pair.now)
        server = pair.server
        if server is not None and server.readable:
            got += len(server.read(pair.now, 1 << 30))
        pair.flush()
        if got >= len(data):
            break
        if server is not None and server.readable:
            continue
        if client.error or not pair.step() or pair.now > 1e7:
            raise AssertionError(f"transfer did not complete: {config}, {link}")
    return got / pair.now


def cell(buffer: int, loss: float, congestion: str) -> float:
    size = 10 << 20 if FULL else min(10 << 20, max(64 << 10, buffer * 200))
    if QUICK:
        size = max(16 << 10, size // 4)
    link = LinkConfig(loss=loss, delay=0.05)
    rates = []
    for seed in range(SEEDS):
        data = random.Random(seed).randbytes(size)
        rates.append(run(data, link, seed, config(buffer, congestion)))
    return sum(rates) / len(rates)


def main() -> None:
    started = time.perf_counter()
    print(
        "loss recovery, 100 ms RTT, bytes per virtual second.\n"
        "Per cell: smoltcp | ours like-for-like (congestion='none': no congestion\n"
        "window, as smoltcp's netsim runs with its NoControl default; SACK, RFC 6675\n"
        "recovery and the RTO still on) | ours with CUBIC (our default); the ratio is\n"
        "like-for-like / smoltcp."
    )
    head = ("buffer", "loss", "smoltcp", "ours none", "ours cubic", "ratio")
    print("{:>7} {:>6} {:>10} {:>10} {:>10} {:>6}".format(*head))
    worst = (float("inf"), 0, 0.0)
    wins = cubic_wins = cells = 0
    for buffer in BUFFERS:
        for i, loss in enumerate(LOSSES):
            theirs = SMOLTCP[buffer][i]
            ours = cell(buffer, loss, "none")
            cubic = cell(buffer, loss, "cubic")
            ratio = ours / theirs
            cells += 1
            wins += ratio > 1.0
            cubic_wins += cubic > theirs
            if ratio < worst[0]:
                worst = (ratio, buffer, loss)
            print(
                f"{buffer:>7} {loss:>6.3f} {theirs:>10.0f} {ours:>10.0f} {cubic:>10.0f}"
                f" {ratio:>6.2f}",
                flush=True,
            )
    print(
        f"cells where ours (like-for-like) > smoltcp: {wins} of {cells}; lowest ratio"
        f" {worst[0]:.3f} (buffer {worst[1]}, loss {worst[2]}); with CUBIC: {cubic_wins}"
        f" of {cells}; {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
