"""The devices of an application that is a Linux process inside a guest.

Shared by every hypervisor target (virtio here, mirage-xen's ``xen``, mirage-arm's
boards): mirage-unix's console, clocks and random; as the network, our own TCP/IP
stack (mirage-tcpip's ``direct_stack``) over a raw packet socket on the guest's NIC
(mirage-net's ``packet``), or the guest kernel's TCP/IP with ``--net socket`` (or
``--net host``); as the block device, mirage-block's ``file-block`` on the guest's
first disk (``/dev/disk0``).
Declarations only: light enough for plugin modules to import.
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
        # Frames for our stack: the guest's NIC, taken over with AF_PACKET (the
        # target passes --interface eth0).
        "network": impl("packet", dist="mirage-net"),
        # The guest's first disk (virtio-blk, or xen-blkfront on Xen), which /init
        # links to /dev/disk0 when the image has one.
        "block": impl("file-block", dist="mirage-block", path="/dev/disk0"),
        "stack": match_impl(
            key("net"),
            {"socket": impl("socket_stack", dist=_U), "host": impl("socket_stack", dist=_U)},
            default=impl("direct_stack", dist="mirage-tcpip"),
        ),
    }
