"""``tls_stack`` over the unix socket stack passes the Stack conformance kit."""

from __future__ import annotations

from pathlib import Path

import pytest
from tls_certs import make_pki, pem_cert, pem_chain, pem_key

from mirage.core.testing import StackTests
from mirage.core.types import Stack
from mirage.tls.stack import TlsStack

try:
    from mirage.unix.stack import SocketStack
except ImportError:  # mirage-unix is a test-only companion
    SocketStack = None  # type: ignore[assignment,misc]

PKI = make_pki()
LEAF = PKI.leaf(("127.0.0.1",))


@pytest.mark.skipif(SocketStack is None, reason="needs mirage-unix (the unix socket stack)")
class TestTlsStack(StackTests):
    @pytest.fixture(autouse=True)
    def _files(self, tmp_path: Path) -> None:
        self.files = {}
        for name, data in (
            ("cert", pem_chain(LEAF)),
            ("key", pem_key(LEAF)),
            ("ca", pem_cert(PKI.root)),
        ):
            path = tmp_path / f"{name}.pem"
            path.write_bytes(data)
            self.files[name] = str(path)

    async def make_stack(self) -> Stack:
        inner = await SocketStack.connect(ipv4="127.0.0.1")
        return await TlsStack.connect(  # type: ignore[return-value]
            stack=inner,
            tls_cert=self.files["cert"],
            tls_key=self.files["key"],
            tls_ca=self.files["ca"],
        )

    def peer_address(self) -> str:
        return "127.0.0.1"
