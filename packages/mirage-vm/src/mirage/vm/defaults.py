"""The devices of an application that is a Linux process inside a guest.

Shared by every hypervisor target (virtio here, mirage-xen's ``xen``, mirage-arm's
boards): mirage-unix's console, clocks and random, and the guest kernel's TCP/IP
(``--net socket``, the default) or ours (``--net direct``). Declarations only: light
enough for plugin modules to import.
"""

from __future__ import annotations

from mirage.core.dsl import Node, impl, key, match_impl

__all__ = ["guest_defaults"]

_U = "mirage-unix"


def guest_defaults() -> dict[str, Node]:
    return {
        "console": impl("unix_console", dist=_U),
        "sleep": impl("unix_sleep", dist=_U),
        "clock": impl("unix_clock", dist=_U),
        "random": impl("unix_random", dist=_U),
        "stack": match_impl(
            key("net"),
            {"direct": impl("direct_stack", dist="mirage-tcpip")},
            default=impl("socket_stack", dist=_U),
        ),
    }
