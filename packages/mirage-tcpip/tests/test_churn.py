"""Connection churn in virtual time: many sequential connections between two
direct stacks over ``vnet`` leave no state behind once TIME-WAIT has passed."""

from __future__ import annotations

import asyncio

from mirage.net import Switch, VnetInterface, run_virtual
from mirage.tcpip.stack import DirectStack, TcpFlow

CONNECTIONS = 20_000


async def churn(count: int) -> dict[str, int]:
    switch = Switch()
    na = await VnetInterface.connect(switch=switch, delay=0.001, seed=1)
    nb = await VnetInterface.connect(switch=switch, delay=0.001, seed=2)
    client = await DirectStack.connect(network=na, ipv4="10.3.0.1/24")
    server = await DirectStack.connect(network=nb, ipv4="10.3.0.2/24")
    served = 0

    async def handler(flow: TcpFlow) -> None:
        nonlocal served
        assert await flow.read() == b"hi"
        await flow.write(b"yo")
        await flow.close()
        served += 1

    await server.tcp.listen(80, handler)  # type: ignore[arg-type]
    tasks_before = (len(client._tasks), len(server._tasks))
    peak = 0
    for _ in range(count):
        flow = await client.tcp.connect("10.3.0.2", 80)
        await flow.write(b"hi")
        assert await flow.read() == b"yo"
        await flow.close()
        peak = max(peak, len(client.conns), len(server.conns))
    # Past 2 MSL, every TIME-WAIT is gone (on whichever side closed first).
    await asyncio.sleep(2 * client.tcp_config.msl + 5)
    state = {
        "served": served,
        "peak": peak,
        "client_conns": len(client.conns),
        "server_conns": len(server.conns),
        "held": len(client._held) + len(server._held),
        "arp_queue": len(client._arp_queue) + len(server._arp_queue),
        "extra_tasks": len(client._tasks) - tasks_before[0] + len(server._tasks) - tasks_before[1],
        "tx_backlog": len(client._tx) + len(server._tx),
        "reassembly": len(client.reassembler) + len(server.reassembler),
    }
    await client.disconnect()
    await server.disconnect()
    return state


def test_sequential_connections_leave_no_state() -> None:
    state = run_virtual(churn(CONNECTIONS), timeout=3600)
    assert state["served"] == CONNECTIONS
    assert state["peak"] > 100  # TIME-WAIT entries did pile up meanwhile
    assert {k: v for k, v in state.items() if k not in ("served", "peak")} == {
        "client_conns": 0,
        "server_conns": 0,
        "held": 0,
        "arp_queue": 0,
        "extra_tasks": 0,
        "tx_backlog": 0,
        "reassembly": 0,
    }


async def time_wait_ends(count: int) -> tuple[list[float], int]:
    """Close ``count`` connections from the server side, 1 ms apart; return how long
    each server TIME-WAIT lasted and how often the server's timer woke meanwhile."""
    from mirage.tcpip.stack import TIME_WAIT_SLACK
    from mirage.tcpip.tcp import State, TcpConfig

    assert TIME_WAIT_SLACK > 0
    switch = Switch()
    na = await VnetInterface.connect(switch=switch, seed=1)
    nb = await VnetInterface.connect(switch=switch, seed=2)
    config = TcpConfig(msl=1.0)
    client = await DirectStack.connect(network=na, ipv4="10.3.1.1/24", tcp_config=config)
    server = await DirectStack.connect(network=nb, ipv4="10.3.1.2/24", tcp_config=config)
    loop = asyncio.get_running_loop()
    entered: dict[object, float] = {}

    async def handler(flow: TcpFlow) -> None:
        await flow.close()

    await server.tcp.listen(80, handler)  # type: ignore[arg-type]
    wakeups = 0
    on_timer = server._on_timer

    def counting() -> None:
        nonlocal wakeups
        wakeups += 1
        on_timer()

    server._on_timer = counting  # type: ignore[method-assign]
    for _ in range(count):
        flow = await client.tcp.connect("10.3.1.2", 80)
        assert await flow.read() == b""
        await flow.close()
        await asyncio.sleep(0.001)
        for quad, f in server.conns.items():
            if f.conn.state is State.TIME_WAIT and quad not in entered:
                entered[quad] = loop.time()
    lasted: dict[object, float] = {}
    while len(lasted) < len(entered):
        await asyncio.sleep(0.001)
        for key, start in entered.items():
            if key not in server.conns and key not in lasted:
                lasted[key] = loop.time() - start
    await client.disconnect()
    await server.disconnect()
    return list(lasted.values()), wakeups


def test_time_wait_ends_are_batched_and_not_early() -> None:
    from mirage.tcpip.stack import TIME_WAIT_SLACK

    lasted, wakeups = run_virtual(time_wait_ends(500), timeout=600)
    assert len(lasted) == 500
    # 2 MSL, and at most the slack more (each end measured to the 1 ms polling).
    assert min(lasted) >= 2.0 - 0.0011
    assert max(lasted) <= 2.0 + TIME_WAIT_SLACK + 0.0011
    # 500 ends over 0.5 s share a few wakeups rather than one each.
    assert wakeups < 100
