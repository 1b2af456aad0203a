"""mirage-net's plugin: its network interfaces.

Declarations only: factories are import paths, so loading this module opens no device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mirage.core import Impl, RuntimeArg, hookimpl

if TYPE_CHECKING:
    from mirage.core import Registry

REQUIRES = ("mirage-net>=0.1,<1",)
_N = "mirage.net."

_MAC = RuntimeArg("mac", "str", None, "our MAC address (none: a random local one)")

IMPLS = (
    Impl(
        name="tap",
        provides="network",
        factory=_N + "tap:TapNetwork",
        runtime_args=(
            RuntimeArg("tap", "str", "tap0", "TAP device to attach (created if missing)", "name"),
            _MAC,
        ),
        requires=REQUIRES,
        doc="a Linux TAP device (/dev/net/tun; needs CAP_NET_ADMIN)",
    ),
    Impl(
        name="packet",
        provides="network",
        factory=_N + "packet:PacketNetwork",
        runtime_args=(
            RuntimeArg("interface", "str", doc="existing interface to take over (AF_PACKET)"),
            RuntimeArg("mac", "str", None, "our MAC address (none: the interface's own)"),
        ),
        requires=REQUIRES,
        doc="a raw packet socket on an existing interface (needs CAP_NET_RAW)",
    ),
    Impl(
        name="socket",
        provides="network",
        factory=_N + "socket:SocketNetwork",
        runtime_args=(
            RuntimeArg("net-local", "str", doc="our end: udp:HOST:PORT or unix:PATH", dest="local"),
            RuntimeArg("net-remote", "str", doc="the peer's end, same kind", dest="remote"),
            _MAC,
        ),
        requires=REQUIRES,
        doc="Ethernet frames as datagrams over UDP or Unix sockets (QEMU -netdev dgram)",
    ),
    Impl(
        name="vnet",
        provides="network",
        factory=_N + "vnet:VnetInterface",
        runtime_args=(
            RuntimeArg("switch", "str", "default", "name of the in-process switch"),
            _MAC,
            RuntimeArg("loss", "float", 0.0, "probability that a frame is lost"),
            RuntimeArg("delay", "float", 0.0, "one-way delay in seconds"),
            RuntimeArg("seed", "int", 0, "seed of the fault injector"),
        ),
        requires=REQUIRES,
        doc="a port of an in-process switch with seeded fault injection",
    ),
    Impl(
        name="pcap",
        provides="network",
        factory=_N + "pcap:PcapNetwork",
        needs={"network": "network"},
        runtime_args=(RuntimeArg("pcap", "path", "capture.pcap", "file to write the capture to"),),
        requires=REQUIRES,
        doc="another network, with every frame recorded into a pcap file",
    ),
)


@hookimpl
def mirage_register_impls(registry: Registry) -> None:
    for impl in IMPLS:
        registry.add_impl(impl)
