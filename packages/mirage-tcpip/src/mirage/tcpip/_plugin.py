"""mirage-tcpip's plugin: the direct stack.

Declarations only: loading this module imports no part of the stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mirage.core import Impl, RuntimeArg, hookimpl

if TYPE_CHECKING:
    from mirage.core import Registry

REQUIRES = ("mirage-tcpip>=0.1,<1", "mirage-net>=0.1,<1")

IMPLS = (
    Impl(
        name="direct_stack",
        provides="stack",
        factory="mirage.tcpip.stack:DirectStack",
        needs={"network": "network"},
        runtime_args=(
            RuntimeArg("ipv4", "str", "10.0.0.2/24", "our IPv4 address and prefix length"),
            RuntimeArg("ipv4-gateway", "str", None, "IPv4 default gateway (none: on-link only)"),
            RuntimeArg(
                "dhcp", "bool", False, "lease the IPv4 address by DHCP (--ipv4 dhcp does too)"
            ),
            RuntimeArg("ipv6", "bool", False, "IPv6 too: link-local address and SLAAC"),
            RuntimeArg("dhcp6", "bool", False, "with --ipv6: lease an IPv6 address by DHCPv6"),
        ),
        requires=REQUIRES,
        doc="our own TCP/IP stack (Ethernet, ARP, IPv4, IPv6, ICMP, UDP, TCP, DHCP) over a network",
    ),
)


@hookimpl
def mirage_register_impls(registry: Registry) -> None:
    for impl in IMPLS:
        registry.add_impl(impl)
