"""The static-website unikernel: every file of the store over HTTP/1.1."""

import asyncio

from mirage.core.types import Console, KvRo, Stack
from mirage.http import StaticFiles, serve


async def start(stack: Stack, console: Console, htdocs: KvRo, port: int) -> None:
    await serve(stack, port, StaticFiles(htdocs, index=("index.html",)))
    ips = stack.ip.configured_ips()
    host = ips[0] if ips and ips[0] not in ("0.0.0.0", "::") else "localhost"
    if ":" in host:
        host = f"[{host}]"
    await console.log(f"static-website: serving on http://{host}:{port}/")
    await asyncio.Event().wait()  # serve until stopped
