"""``tls_stack``: a Stack whose TCP connections are TLS, over any other Stack.

For unikernels that want TLS chosen in ``config.py`` rather than in their code:
``impl("tls_stack", stack=default("stack"))`` gives a stack whose ``tcp.connect``
returns a client :class:`~mirage.tls.TlsFlow` and whose ``tcp.listen`` hands the
handler server flows (a client that fails its handshake is dropped and logged). UDP
and IP pass through unchanged. Certificates and the trust store are read from PEM
files given at run time.
"""

from __future__ import annotations

import logging
import ssl
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning

from mirage.core.types import Flow, Stack

from ._config import CertifiedKey, TlsConfig
from ._errors import TlsError, TlsUsageError
from .flow import TlsFlow

__all__ = ["TlsStack", "TlsTcp", "system_trust_store"]

log = logging.getLogger(__name__)


def system_trust_store() -> tuple[x509.Certificate, ...]:
    """The host's CA bundle, where Python's ssl module says it is (empty if none)."""
    paths = ssl.get_default_verify_paths()
    found: list[x509.Certificate] = []
    if paths.cafile and Path(paths.cafile).is_file():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            found += x509.load_pem_x509_certificates(Path(paths.cafile).read_bytes())
    return tuple(found)


class TlsTcp:
    def __init__(
        self,
        tcp: object,
        client: TlsConfig,
        server: TlsConfig | None,
        server_name: str | None,
        clock: Callable[[], float],
    ) -> None:
        self._tcp = tcp
        self._client = client
        self._server = server
        self._server_name = server_name
        self._clock = clock

    async def connect(self, dst: str, port: int) -> Flow:
        flow: Flow = await self._tcp.connect(dst, port)  # type: ignore[attr-defined]
        name = self._server_name or dst
        return await TlsFlow.client(flow, self._client, name, self._clock)

    async def listen(self, port: int, handler: Callable[[Flow], Awaitable[None]]) -> None:
        server = self._server
        if server is None:
            raise TlsUsageError("tls_stack needs --tls-cert and --tls-key to listen")

        async def accept(flow: Flow) -> None:
            try:
                tls = await TlsFlow.server(flow, server, self._clock)
            except TlsError as e:
                log.info("TLS handshake on port %d failed: %s", port, e)
                return
            await handler(tls)

        await self._tcp.listen(port, accept)  # type: ignore[attr-defined]

    async def unlisten(self, port: int) -> None:
        await self._tcp.unlisten(port)  # type: ignore[attr-defined]


class TlsStack:
    """TLS over the TCP of ``stack``; see the module's documentation."""

    def __init__(
        self,
        stack: Stack,
        client: TlsConfig,
        server: TlsConfig | None,
        server_name: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.inner = stack
        self._tcp = TlsTcp(stack.tcp, client, server, server_name, clock)

    @classmethod
    async def connect(
        cls,
        *,
        stack: Stack,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        tls_ca: str | None = None,
        tls_server_name: str | None = None,
    ) -> TlsStack:
        """``tls_cert``/``tls_key``: PEM chain and key for serving; ``tls_ca``: PEM
        roots that peers must chain to (default: the host's CA bundle)."""
        trust = (
            tuple(x509.load_pem_x509_certificates(Path(tls_ca).read_bytes()))
            if tls_ca
            else system_trust_store()
        )
        server: TlsConfig | None = None
        if tls_cert or tls_key:
            if not (tls_cert and tls_key):
                raise TlsUsageError("tls_stack needs both --tls-cert and --tls-key")
            creds = CertifiedKey.from_pem(Path(tls_cert).read_bytes(), Path(tls_key).read_bytes())
            server = TlsConfig(certificates=(creds,), trust_store=trust)
        return cls(stack, TlsConfig(trust_store=trust), server, tls_server_name)

    async def disconnect(self) -> None:
        """The wrapped stack is disconnected by its own owner."""

    @property
    def tcp(self) -> TlsTcp:
        return self._tcp

    @property
    def udp(self) -> object:
        return self.inner.udp

    @property
    def ip(self) -> object:
        return self.inner.ip
