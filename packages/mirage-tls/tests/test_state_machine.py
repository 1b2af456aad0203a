"""A client and a server driven by hypothesis: data both ways, key updates, bytes
delivered in arbitrary pieces; what arrives equals what was sent, in order."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from tls_certs import NOW_TS, make_pki

from mirage.tls import (
    CipherSuite,
    ConnectionClosed,
    DataReceived,
    State,
    TlsConfig,
    TlsConnection,
    TlsUsageError,
)

PKI = make_pki()
LEAF = PKI.leaf()


class TlsPair(RuleBasedStateMachine):
    @initialize(
        suite=st.sampled_from([*list(CipherSuite)[:3], 0xC02B, 0xC02C, 0xCCA9]),
        padding=st.integers(0, 40),
    )
    def setup(self, suite: int, padding: int) -> None:
        self.client = TlsConnection(
            TlsConfig(trust_store=(PKI.root,), cipher_suites=(suite,), padding=padding),
            server_name="localhost",
        )
        self.tls12 = suite > 0x1303
        self.server = TlsConnection(TlsConfig(certificates=(LEAF,)), server_side=True)
        self.client.start()
        self.wire = {"c2s": bytearray(), "s2c": bytearray()}
        self.sent = {"c2s": bytearray(), "s2c": bytearray()}
        self.got = {"c2s": bytearray(), "s2c": bytearray()}
        self.closed = {"c2s": False, "s2c": False}

    def _collect(self) -> None:
        self.wire["c2s"] += self.client.data_to_send()
        self.wire["s2c"] += self.server.data_to_send()

    def _end(self, direction: str) -> TlsConnection:
        return self.client if direction == "c2s" else self.server

    @rule(direction=st.sampled_from(["c2s", "s2c"]), size=st.integers(1, 2000))
    def deliver(self, direction: str, size: int) -> None:
        self._collect()
        chunk = bytes(self.wire[direction][:size])
        del self.wire[direction][:size]
        if not chunk:
            return
        receiver = self.server if direction == "c2s" else self.client
        receiver.receive_data(chunk, NOW_TS)
        while (e := receiver.next_event()) is not None:
            if isinstance(e, DataReceived):
                self.got[direction] += e.data
            elif isinstance(e, ConnectionClosed):
                self.closed[direction] = True

    @precondition(lambda self: self.client.state is State.CONNECTED)
    @rule(direction=st.sampled_from(["c2s", "s2c"]), data=st.binary(min_size=1, max_size=3000))
    def send(self, direction: str, data: bytes) -> None:
        sender = self._end(direction)
        if sender.state is not State.CONNECTED or sender.write_closed:
            return
        sender.send(data)
        self.sent[direction] += data

    @precondition(lambda self: self.client.state is State.CONNECTED)
    @rule(direction=st.sampled_from(["c2s", "s2c"]), request=st.booleans())
    def key_update(self, direction: str, request: bool) -> None:
        sender = self._end(direction)
        try:
            sender.key_update(request)
        except TlsUsageError:
            assert sender.state is not State.CONNECTED or sender.write_closed or self.tls12

    @precondition(lambda self: self.client.state is State.CONNECTED)
    @rule(direction=st.sampled_from(["c2s", "s2c"]))
    def close(self, direction: str) -> None:
        self._end(direction).close()

    @invariant()
    def received_is_a_prefix_of_sent(self) -> None:
        for d in ("c2s", "s2c"):
            assert self.sent[d][: len(self.got[d])] == self.got[d]

    def teardown(self) -> None:
        if not hasattr(self, "client"):
            return
        for _ in range(10):
            for d in ("c2s", "s2c"):
                self.deliver(d, 1 << 20)
        assert self.client.state is State.CONNECTED and self.server.state is State.CONNECTED
        for d in ("c2s", "s2c"):
            assert self.got[d] == self.sent[d]
            assert self.closed[d] == self._end(d).write_closed


TestTlsPair = TlsPair.TestCase
TestTlsPair.settings = settings(max_examples=25, stateful_step_count=25, deadline=None)
