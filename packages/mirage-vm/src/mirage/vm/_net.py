"""How a guest's NIC is wired to the host, and how the guest's stack is told about it.

A guest has one virtio NIC (``eth0`` inside) when its configuration has a network
stack. On the host side it is one of QEMU's network backends:

- ``user`` (the default): QEMU's user-mode network (slirp), with host TCP ports
  forwarded into the guest (``--vm-forward HOST:GUEST,...``); the guest is
  10.0.2.15/24 behind the gateway 10.0.2.2;
- ``dgram:LOCAL,REMOTE``: one Ethernet frame per datagram between QEMU's socket
  ``LOCAL`` and a peer's ``REMOTE`` (``unix:PATH`` or ``udp:HOST:PORT``, as
  mirage-net's ``socket`` network spells them), no privilege needed; the guest is
  10.0.0.2/24 unless its runtime arguments say otherwise;
- ``tap:NAME``: the host's TAP device ``NAME`` (created by QEMU if missing: needs
  CAP_NET_ADMIN); the guest is 10.0.0.2/24 unless told otherwise.

Inside the guest, our own stack (mirage-tcpip's ``direct_stack`` over mirage-net's
``packet`` network on ``eth0``) gets its interface and address as runtime arguments
put ahead of the user's (so the user's own ``--ipv4`` wins); the guest kernel's stack
(``--net socket``) gets them on the kernel command line, and ``/init`` configures it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mirage.core import MirageError

if TYPE_CHECKING:
    from mirage.core._plan import Plan

__all__ = [
    "NIC",
    "Netdev",
    "guest_network",
    "parse_netdev",
    "qemu_netdev_args",
    "split_run_options",
    "run_timeout",
    "stack_kind",
]

NIC = "eth0"
USER_IPV4 = "10.0.2.15/24"  # QEMU's user-mode network
USER_GATEWAY = "10.0.2.2"
LINK_IPV4 = "10.0.0.2/24"  # dgram and TAP: a link of the user's own


@dataclass(frozen=True, slots=True)
class Netdev:
    """A QEMU network backend for the guest's NIC."""

    kind: str  # "user", "dgram" or "tap"
    forwards: tuple[tuple[int, int], ...] = ()
    tap: str = ""
    local: str = ""
    remote: str = ""

    @property
    def spec(self) -> str:
        if self.kind == "tap":
            return f"tap:{self.tap}"
        if self.kind == "dgram":
            return f"dgram:{self.local},{self.remote}"
        return "user"


def _forwards(text: str) -> tuple[tuple[int, int], ...]:
    found = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        host, sep, guest = item.partition(":")
        if not (sep and host.isdigit() and guest.isdigit()):
            raise MirageError(
                f"bad port forward {item!r}", where="--vm-forward", hint="write HOST:GUEST,..."
            )
        found.append((int(host), int(guest)))
    return tuple(found)


def _endpoint(text: str) -> str:
    kind, sep, rest = text.partition(":")
    if kind == "unix" and sep and rest:
        return text
    if kind == "udp" and sep:
        host, colon, port = rest.rpartition(":")
        if colon and host and port.isdigit():
            return text
    raise MirageError(
        f"bad datagram endpoint {text!r}",
        where="--vm-net",
        hint="write dgram:LOCAL,REMOTE with each end unix:PATH or udp:HOST:PORT",
    )


def parse_netdev(spec: str | None, forward: str | None = None) -> Netdev:
    """``user``, ``dgram:LOCAL,REMOTE`` or ``tap:NAME`` (``None``: ``user``)."""
    text = (spec or "user").strip()
    forwards = _forwards(forward or "")
    if text == "user":
        return Netdev("user", forwards)
    if forwards:
        raise MirageError(
            "port forwards are for QEMU's user-mode network only",
            where="--vm-forward",
            hint="with dgram or tap, reach the guest at its own address",
        )
    kind, _, rest = text.partition(":")
    if kind == "tap" and rest and len(rest) < 16 and "," not in rest:
        return Netdev("tap", tap=rest)
    if kind == "dgram":
        local, comma, remote = rest.partition(",")
        if comma:
            return Netdev("dgram", local=_endpoint(local), remote=_endpoint(remote))
    raise MirageError(
        f"unknown guest network {text!r}",
        where="--vm-net",
        hint="write user, tap:NAME or dgram:LOCAL,REMOTE (unix:PATH or udp:HOST:PORT each)",
    )


def _qemu_endpoint(side: str, text: str) -> str:
    kind, _, rest = text.partition(":")
    if kind == "unix":
        return f"{side}.type=unix,{side}.path={rest}"
    host, _, port = rest.rpartition(":")
    return f"{side}.type=inet,{side}.host={host},{side}.port={port}"


def qemu_netdev_args(netdev: Netdev, device: str = "virtio-net-pci") -> list[str]:
    """QEMU's ``-netdev`` and ``-device`` arguments for the guest's NIC."""
    if netdev.kind == "tap":
        # No virtio-net header: with it, the host's frames may arrive with checksums
        # left to offload, which a raw socket in the guest sees unfinished.
        backend = f"tap,id=n0,ifname={netdev.tap},script=no,downscript=no,vnet_hdr=off"
    elif netdev.kind == "dgram":
        backend = (
            f"dgram,id=n0,{_qemu_endpoint('local', netdev.local)},"
            f"{_qemu_endpoint('remote', netdev.remote)}"
        )
    else:
        backend = "user,id=n0" + "".join(
            f",hostfwd=tcp:127.0.0.1:{host}-:{guest}" for host, guest in netdev.forwards
        )
    suffix = ",romfile=" if device.endswith("-pci") else ""
    return ["-netdev", backend, "-device", f"{device},netdev=n0{suffix}"]


def stack_kind(plan: Plan) -> str | None:
    """``"direct"`` (our stack), ``"kernel"`` (the guest kernel's) or ``None`` (no
    network in the configuration)."""
    impls = {d.impl for d in plan.devices}
    if "direct_stack" in impls:
        return "direct"
    if any(d.module_type in ("stack", "network") for d in plan.devices):
        return "kernel"
    return None


def guest_network(
    runtime_args: Collection[str], kind: str | None, netdev: Netdev, argv: list[str]
) -> tuple[list[str], list[str]]:
    """The kernel command line's network words and the application's arguments, for
    an image whose runtime arguments are named ``runtime_args``."""
    if kind is None:
        return [], argv
    ipv4, gateway = (USER_IPV4, USER_GATEWAY) if netdev.kind == "user" else (LINK_IPV4, None)
    if kind == "kernel":
        words = [f"MIRAGE_IPV4={ipv4}"] + ([f"MIRAGE_GATEWAY={gateway}"] if gateway else [])
        return words, argv
    names = set(runtime_args)
    prefix: list[str] = []
    if "interface" in names:
        prefix += ["--interface", NIC]
    if "ipv4" in names:
        prefix += ["--ipv4", ipv4]
    if gateway and "ipv4-gateway" in names:
        prefix += ["--ipv4-gateway", gateway]
    return [], [*prefix, *argv]


RUN_OPTIONS = ("--vm-net", "--vm-forward", "--vm-timeout", "--vm-disk")


def split_run_options(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """``mirage run``'s own options (``--vm-net``, ``--vm-forward``, ``--vm-timeout``,
    ``--vm-disk``) out of ``argv``, keyed without ``--vm-``; the rest goes to the
    application."""
    options: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        name, eq, value = token.partition("=")
        if name in RUN_OPTIONS:
            if not eq:
                if i + 1 >= len(argv):
                    raise MirageError(f"{name} needs a value", where="mirage run")
                i += 1
                value = argv[i]
            options[name.removeprefix("--vm-")] = value
        else:
            rest.append(token)
        i += 1
    return options, rest


def run_timeout(options: dict[str, str]) -> float | None:
    """``--vm-timeout SECONDS`` taken out of ``options`` (``None``: wait for ever)."""
    text = options.pop("timeout", None)
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise MirageError(
            f"bad timeout {text!r}", where="--vm-timeout", hint="give a number of seconds"
        )
    return seconds
