"""mirage-dns's plugin: the ``dns_resolver`` implementation of ``resolver``.

Declarations only: loading this module imports no resolver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mirage.core import Impl, RuntimeArg, hookimpl

if TYPE_CHECKING:
    from mirage.core import Registry

REQUIRES = ("mirage-dns>=0.1,<1",)

# The IPv4 addresses of the thirteen root name servers (a to m.root-servers.net).
ROOT_SERVERS = (
    "198.41.0.4,170.247.170.2,192.33.4.12,199.7.91.13,192.203.230.10,192.5.5.241,"
    "192.112.36.4,198.97.190.53,192.36.148.17,192.58.128.30,193.0.14.129,199.7.83.42,"
    "202.12.27.33"
)

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
    Impl(
        name="dns_recursive_resolver",
        provides="resolver",
        factory="mirage.dns.resolver:RecursiveResolver",
        needs={"stack": "stack"},
        runtime_args=(
            RuntimeArg(
                "root_hints",
                "str",
                ROOT_SERVERS,
                "addresses of the root name servers to start from, comma-separated",
            ),
        ),
        requires=REQUIRES,
        doc="a caching recursive resolver that walks down from the root servers itself",
    ),
)


@hookimpl
def mirage_register_impls(registry: Registry) -> None:
    for impl in IMPLS:
        registry.add_impl(impl)
