"""TlsFlow passes the Flow conformance kit, over in-memory flows and host sockets."""

from __future__ import annotations

import asyncio

import pytest
from tls_certs import NOW_TS, make_pki

from mirage.core.testing import AsyncTests, FlowTests, async_test, read_exactly
from mirage.core.types import Flow, FlowClosed
from mirage.tls import PeerAlert, TlsConfig, TlsError, UnknownCa
from mirage.tls.flow import TlsFlow

PKI = make_pki()
LEAF = PKI.leaf()
CLIENT = TlsConfig(trust_store=(PKI.root,), alpn_protocols=(b"echo",))
SERVER = TlsConfig(certificates=(LEAF,), alpn_protocols=(b"echo",))


def clock() -> float:
    return NOW_TS


class _Pipe:
    """One end of an in-memory byte-stream pair."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.peer: _Pipe | None = None
        self.write_closed = False

    async def read(self) -> bytes:
        return await self.inbox.get()

    async def write(self, data: bytes) -> None:
        if self.write_closed:
            raise FlowClosed("closed")
        assert self.peer is not None
        if data:
            self.peer.inbox.put_nowait(bytes(data))

    async def writev(self, bufs: list[bytes]) -> None:
        await self.write(b"".join(bufs))

    async def shutdown(self) -> None:
        if not self.write_closed:
            self.write_closed = True
            assert self.peer is not None
            self.peer.inbox.put_nowait(b"")

    async def close(self) -> None:
        await self.shutdown()


def pipe_pair() -> tuple[Flow, Flow]:
    a, b = _Pipe(), _Pipe()
    a.peer, b.peer = b, a
    return a, b


async def tls_pair(a: Flow, b: Flow) -> tuple[TlsFlow, TlsFlow]:
    client, server = await asyncio.gather(
        TlsFlow.client(a, CLIENT, "localhost", clock), TlsFlow.server(b, SERVER, clock)
    )
    return client, server


class TestTlsFlowInMemory(FlowTests):
    async def make_flow_pair(self) -> tuple[Flow, Flow]:
        return await tls_pair(*pipe_pair())


try:
    from mirage.unix.stack import SocketStack
except ImportError:  # mirage-unix is a test-only companion
    SocketStack = None  # type: ignore[assignment,misc]


@pytest.mark.skipif(SocketStack is None, reason="needs mirage-unix (the unix socket stack)")
class TestTlsFlowOverHostSockets(FlowTests):
    """Over the unix target's socket stack (mirage-unix), as a unikernel uses it."""

    async def make_flow_pair(self) -> tuple[Flow, Flow]:
        stack = await SocketStack.connect(ipv4="127.0.0.1")
        accepted: asyncio.Future[Flow] = asyncio.get_running_loop().create_future()
        done = asyncio.Event()

        async def handler(flow: Flow) -> None:
            accepted.set_result(flow)
            await done.wait()

        await stack.tcp.listen(0, handler)
        port = stack.tcp.listening_port(0)
        raw_client = await stack.tcp.connect("127.0.0.1", port)
        return await tls_pair(raw_client, await accepted)


class TestTlsFlowExtras(AsyncTests):
    @async_test
    async def test_alpn_and_key_update(self) -> None:
        client, server = await tls_pair(*pipe_pair())
        assert client.alpn_protocol == server.alpn_protocol == b"echo"
        await client.key_update()
        await client.write(b"after update")
        assert await read_exactly(server, 12) == b"after update"
        await server.write(b"reply")
        assert await read_exactly(client, 5) == b"reply"
        await client.close()
        await server.close()

    @async_test
    async def test_failed_handshake_alerts_the_peer(self) -> None:
        a, b = pipe_pair()
        other = make_pki()
        results = await asyncio.gather(
            TlsFlow.client(a, TlsConfig(trust_store=(other.root,)), "localhost", clock),
            TlsFlow.server(b, SERVER, clock),
            return_exceptions=True,
        )
        assert isinstance(results[0], UnknownCa)
        assert isinstance(results[1], PeerAlert)

    @async_test
    async def test_transport_closed_during_handshake(self) -> None:
        a, b = pipe_pair()
        await b.close()
        with pytest.raises(TlsError):
            await TlsFlow.client(a, CLIENT, "localhost", clock)
