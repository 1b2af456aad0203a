"""The dns-server unikernel: loads every ``*.zone`` of its store and serves them."""

import asyncio

from mirage.core.types import Console, KvKind, KvRo, Stack
from mirage.dns import Authority, Zone, parse_zone
from mirage.dns.server import DnsServer


async def start(stack: Stack, console: Console, zones: KvRo, port: int) -> None:
    loaded = []
    for name, kind in await zones.list(""):
        if kind is KvKind.VALUE and name.endswith(".zone"):
            text = (await zones.get(name)).decode("utf-8")
            zone = Zone.from_records(parse_zone(text, filename=name), source=name)
            loaded.append(zone)
            await console.log(f"dns-server: loaded {zone.origin} from {name}")
    server = DnsServer(stack, Authority(loaded), port)
    await server.start()
    await console.log(f"dns-server: answering on UDP and TCP port {port}")
    await asyncio.Event().wait()  # serve until stopped
