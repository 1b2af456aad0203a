"""mirage-tls's plugin: one implementation, ``tls_stack``.

Most applications wrap a flow they already have (``await TlsFlow.client(flow,
config, name)``); that needs no device. ``tls_stack`` is for configurations that
choose TLS in ``config.py``: a ``stack`` over another ``stack`` whose TCP is TLS.
Declarations only: loading this module imports nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mirage.core import Impl, RuntimeArg, hookimpl

if TYPE_CHECKING:
    from mirage.core import Registry

REQUIRES = ("mirage-tls>=0.1,<1",)

IMPLS = (
    Impl(
        name="tls_stack",
        provides="stack",
        factory="mirage.tls.stack:TlsStack",
        needs={"stack": "stack"},
        runtime_args=(
            RuntimeArg("tls-cert", "path", None, "PEM certificate chain to serve (leaf first)"),
            RuntimeArg("tls-key", "path", None, "PEM private key of the served certificate"),
            RuntimeArg(
                "tls-ca", "path", None, "PEM roots peers must chain to (default: the host's)"
            ),
            RuntimeArg(
                "tls-server-name",
                "str",
                None,
                "the name a client checks in servers' certificates (default: the address)",
            ),
        ),
        requires=REQUIRES,
        doc="TLS 1.3/1.2 over the TCP of another stack; UDP and IP pass through",
    ),
)


@hookimpl
def mirage_register_impls(registry: Registry) -> None:
    for impl in IMPLS:
        registry.add_impl(impl)
