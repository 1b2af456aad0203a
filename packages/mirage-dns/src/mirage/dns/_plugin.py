"""mirage-dns's plugin: the ``dns_resolver`` implementation of ``resolver``.

Declarations only: loading this module imports no resolver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mirage.core import Impl, RuntimeArg, hookimpl

if TYPE_CHECKING:
    from mirage.core import Registry

REQUIRES = ("mirage-dns>=0.1,<1",)

IMPLS = (
    Impl(
        name="dns_resolver",
        provides="resolver",
        factory="mirage.dns.resolver:DnsResolver",
        needs={"stack": "stack"},
        runtime_args=(
            RuntimeArg(
                "nameserver",
                "str",
                "127.0.0.1",
                "name servers to ask, comma-separated (host, host:port or [v6]:port)",
            ),
        ),
        requires=REQUIRES,
        doc="a caching stub resolver that asks name servers over the stack (UDP, then TCP)",
    ),
)


@hookimpl
def mirage_register_impls(registry: Registry) -> None:
    for impl in IMPLS:
        registry.add_impl(impl)
