"""TCP pairs over faulty simulated links, in virtual time: transfers end byte-exact.

A hypothesis ``RuleBasedStateMachine`` drives a client and a server connection over a
link that loses, duplicates, reorders and corrupts: both sides write, read and shut
down in any order; what each side reads is always a prefix of what the other wrote,
and once the link heals everything arrives and both connections close.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mirage.net import LinkConfig
from mirage.tcpip.sim import SimPair, transfer
from mirage.tcpip.tcp import State, TcpConfig

FAULTS = st.builds(
    LinkConfig,
    loss=st.sampled_from([0.0, 0.05, 0.1, 0.3]),
    duplicate=st.sampled_from([0.0, 0.05]),
    reorder=st.sampled_from([0.0, 0.1]),
    corrupt=st.sampled_from([0.0, 0.02]),
    delay=st.sampled_from([0.001, 0.05]),
    jitter=st.sampled_from([0.0, 0.01]),
)


CONFIGS = st.builds(
    TcpConfig,
    send_buffer=st.sampled_from([2048, 16384, 262144]),
    recv_buffer=st.sampled_from([2048, 16384, 262144]),
    sack=st.booleans(),
    timestamps=st.booleans(),
    window_scaling=st.booleans(),
    nodelay=st.booleans(),
    congestion=st.sampled_from(["cubic", "newreno"]),
    max_retries=st.just(40),
    syn_retries=st.just(40),
)


@settings(max_examples=40, deadline=None)
@given(
    faults=FAULTS,
    seed=st.integers(0, 1000),
    size=st.integers(0, 60_000),
    config=CONFIGS,
    read_chunk=st.sampled_from([100, 5000, 1 << 30]),
)
def test_transfer_completes_byte_exact(
    faults: LinkConfig, seed: int, size: int, config: TcpConfig, read_chunk: int
) -> None:
    data = random.Random(seed).randbytes(size)
    result = transfer(
        data, link=faults, seed=seed, config=config, time_limit=1e6, read_chunk=read_chunk
    )
    assert result.received == data
    assert result.completed


def test_transfer_zero_to_thirty_percent_loss() -> None:
    data = random.Random(0).randbytes(100_000)
    for loss in (0.0, 0.1, 0.2, 0.3):
        cfg = TcpConfig(max_retries=40, syn_retries=40)
        r = transfer(
            data, link=LinkConfig(loss=loss, delay=0.02), seed=3, config=cfg, time_limit=1e6
        )
        assert r.received == data, loss


class TcpPair(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.pair = SimPair(
            LinkConfig(
                loss=0.1, duplicate=0.05, reorder=0.1, corrupt=0.02, delay=0.01, jitter=0.005
            ),
            LinkConfig(
                loss=0.1, duplicate=0.05, reorder=0.1, corrupt=0.02, delay=0.01, jitter=0.005
            ),
            seed=11,
            config=TcpConfig(send_buffer=8192, recv_buffer=8192, max_retries=50, syn_retries=50),
        )
        self.pair.client.open(0.0)
        self.pair.flush()
        self.sent = {"client": bytearray(), "server": bytearray()}
        self.got = {"client": bytearray(), "server": bytearray()}
        self.pending = {"client": bytearray(), "server": bytearray()}
        self.shut = {"client": False, "server": False}
        self.rng = random.Random(5)

    def conn(self, side: str):  # type: ignore[no-untyped-def]
        return self.pair.client if side == "client" else self.pair.server

    def pump(self, side: str) -> None:
        conn = self.conn(side)
        if conn is None or conn.state not in (State.ESTABLISHED, State.CLOSE_WAIT):
            return
        if self.pending[side]:
            n = conn.send(bytes(self.pending[side]), self.pair.now)
            self.sent[side] += self.pending[side][:n]
            del self.pending[side][:n]
        if self.shut[side] and not self.pending[side]:
            conn.shutdown(self.pair.now)

    @rule(side=st.sampled_from(["client", "server"]), size=st.integers(1, 20_000))
    def write(self, side: str, size: int) -> None:
        if not self.shut[side]:
            self.pending[side] += self.rng.randbytes(size)
            self.pump(side)
            self.pair.flush()

    @rule(side=st.sampled_from(["client", "server"]), limit=st.integers(1, 10_000))
    def read(self, side: str, limit: int) -> None:
        conn = self.conn(side)
        if conn is not None:
            self.got[side] += conn.read(self.pair.now, limit)
            self.pair.flush()

    @rule(side=st.sampled_from(["client", "server"]))
    def shutdown(self, side: str) -> None:
        self.shut[side] = True
        self.pump(side)
        self.pair.flush()

    @rule(steps=st.integers(1, 50))
    def run(self, steps: int) -> None:
        for _ in range(steps):
            for side in ("client", "server"):
                self.pump(side)
            self.pair.flush()
            if not self.pair.step():
                break

    @invariant()
    def reads_are_prefixes(self) -> None:
        assert self.sent["client"].startswith(self.got["server"])
        assert self.sent["server"].startswith(self.got["client"])

    @precondition(lambda self: True)
    @invariant()
    def nobody_fails(self) -> None:
        for side in ("client", "server"):
            conn = self.conn(side)
            if conn is not None:
                assert conn.error is None, conn.error

    def teardown(self) -> None:
        # Heal the link, finish every write, shut both sides, and run to the end.
        pair = self.pair
        for link in pair._links.values():
            link.config = LinkConfig(delay=0.01)
        self.shut = {"client": True, "server": True}
        for _ in range(200_000):
            for side in ("client", "server"):
                self.pump(side)
                conn = self.conn(side)
                if conn is not None:
                    self.got[side] += conn.read(pair.now)
            pair.flush()
            server = pair.server
            if (
                server is not None
                and pair.client.state in (State.TIME_WAIT, State.CLOSED)
                and server.state in (State.TIME_WAIT, State.CLOSED)
            ):
                break
            if not pair.step():
                break
        assert pair.server is not None
        assert bytes(self.got["server"]) == bytes(self.sent["client"])
        assert bytes(self.got["client"]) == bytes(self.sent["server"])


TcpPair.TestCase.settings = settings(max_examples=15, stateful_step_count=20, deadline=None)
TestTcpPair = TcpPair.TestCase
