"""The static-website unikernel: every file of the store over HTTP/1.1 (and HTTP/2),
and over HTTPS as well when it is given a certificate."""

import asyncio

from mirage.core.types import Console, KvRo, Stack
from mirage.http import ServerConfig, StaticFiles, serve, tls_server_config


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


async def start(
    stack: Stack,
    console: Console,
    htdocs: KvRo,
    port: int,
    *,
    tls_port: int = 8443,
    tls_cert: str | None = None,
    tls_key: str | None = None,
) -> None:
    site = StaticFiles(htdocs, index=("index.html",))
    await serve(stack, port, site)
    ips = stack.ip.configured_ips()
    host = ips[0] if ips and ips[0] not in ("0.0.0.0", "::") else "localhost"
    if ":" in host:
        host = f"[{host}]"
    await console.log(f"static-website: serving on http://{host}:{port}/")
    if tls_cert or tls_key:
        if not (tls_cert and tls_key):
            raise SystemExit("static-website: HTTPS needs both --tls-cert and --tls-key")
        tls = tls_server_config(_read(tls_cert), _read(tls_key))
        await serve(stack, tls_port, site, ServerConfig(tls=tls))
        await console.log(f"static-website: serving on https://{host}:{tls_port}/")
    await asyncio.Event().wait()  # serve until stopped
