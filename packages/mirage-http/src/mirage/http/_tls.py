"""HTTPS: the glue between the HTTP server and client and mirage-tls.

mirage-tls is optional (the ``tls`` extra) and is imported only when TLS is used,
through :func:`importlib.import_module` so that a build's module scan, which follows
``import`` statements, does not carry it (and ``cryptography``'s compiled code) into
artifacts that serve plain HTTP; a target that can run TLS has mirage-tls installed
beside the interpreter. The server offers ALPN ``h2`` (when HTTP/2 is served) and
``http/1.1``; a client that picks ``h2`` opens with the HTTP/2 preface, which the
server detects as it does for h2c. The client offers ``http/1.1`` only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from mirage.core.types import Flow

if TYPE_CHECKING:
    from mirage.tls import TlsConfig, TlsFlow

__all__ = ["client_config", "server_config", "tls_accept", "tls_connect", "tls_server_config"]

H2 = b"h2"
HTTP11 = b"http/1.1"


def _tls() -> ModuleType:
    try:
        return importlib.import_module("mirage.tls")
    except ImportError as exc:
        raise ImportError(
            "HTTPS needs mirage-tls (pip install 'mirage-http[tls]')", name="mirage.tls"
        ) from exc


def tls_server_config(chain_pem: bytes, key_pem: bytes) -> TlsConfig:
    """A server's TLS settings from a PEM certificate chain (leaf first) and its
    private key, for ``ServerConfig(tls=...)``."""
    tls = _tls()
    config: TlsConfig = tls.TlsConfig(certificates=(tls.CertifiedKey.from_pem(chain_pem, key_pem),))
    return config


def server_config(config: TlsConfig, *, http2: bool) -> TlsConfig:
    """``config`` with the ALPN protocols this server speaks (unless it names its
    own)."""
    if config.alpn_protocols:
        return config
    protocols: tuple[bytes, ...] = (HTTP11,)
    if http2:
        try:
            import h2  # noqa: F401
        except ImportError:
            pass
        else:
            protocols = (H2, HTTP11)
    return dataclasses.replace(config, alpn_protocols=protocols)


def client_config(config: TlsConfig | None) -> TlsConfig:
    """``config`` (or the host's trust store) offering ALPN ``http/1.1``."""
    if config is None:
        tls = _tls()
        stack = importlib.import_module("mirage.tls.stack")
        config = tls.TlsConfig(trust_store=stack.system_trust_store())
    assert config is not None
    return dataclasses.replace(config, alpn_protocols=(HTTP11,))


async def tls_accept(flow: Flow, config: TlsConfig, timeout: float) -> TlsFlow | None:
    """The server handshake within ``timeout`` seconds; None (flow closed) if it
    fails or takes longer."""
    tls = _tls()
    try:
        async with asyncio.timeout(timeout):
            accepted: TlsFlow = await tls.TlsFlow.server(flow, config)
            return accepted
    except (tls.TlsError, TimeoutError, ConnectionError, OSError):
        try:
            async with asyncio.timeout(1.0):
                await flow.close()
        except Exception:
            pass
        return None


async def tls_connect(flow: Flow, config: TlsConfig, server_name: str) -> TlsFlow:
    """The client handshake; raises the TLS error (a ``mirage.tls.TlsError``)."""
    connected: TlsFlow = await _tls().TlsFlow.client(flow, config, server_name)
    return connected


def tls_error() -> type[Exception]:
    """``mirage.tls.TlsError``."""
    error: type[Exception] = _tls().TlsError
    return error
