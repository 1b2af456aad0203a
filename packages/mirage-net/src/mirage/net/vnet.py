"""An in-process Ethernet switch and its interfaces, with fault injection.

A :class:`Switch` joins any number of :class:`VnetInterface` ports. It learns which
port each source MAC lives on and forwards unicast frames there; broadcast,
multicast and unknown destinations are flooded to every other port. Every frame a
port sends first crosses that port's :class:`~mirage.net.LinkModel` (seeded loss,
delay, reordering, duplication, corruption), timed on the running event loop's clock.

Switches are found by name within the process, so two devices configured with the
same ``switch`` name share a segment.
"""

from __future__ import annotations

import asyncio

from ._base import FrameDevice, parse_mac, random_mac
from ._link import LinkConfig, LinkModel

__all__ = ["Switch", "VnetInterface"]

_SWITCHES: dict[str, Switch] = {}


class Switch:
    """A learning switch; ``Switch.named(name)`` shares one per process and name."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._ports: list[VnetInterface] = []
        self._fdb: dict[bytes, VnetInterface] = {}

    @classmethod
    def named(cls, name: str) -> Switch:
        switch = _SWITCHES.get(name)
        if switch is None:
            switch = _SWITCHES[name] = cls(name)
        return switch

    @property
    def ports(self) -> list[VnetInterface]:
        return list(self._ports)

    def attach(self, port: VnetInterface) -> None:
        self._ports.append(port)

    def detach(self, port: VnetInterface) -> None:
        if port in self._ports:
            self._ports.remove(port)
        for mac in [m for m, p in self._fdb.items() if p is port]:
            del self._fdb[mac]
        if not self._ports and _SWITCHES.get(self.name) is self:
            del _SWITCHES[self.name]

    def forward(self, src_port: VnetInterface, frame: bytes) -> None:
        dst, src = frame[0:6], frame[6:12]
        if not src[0] & 1:
            self._fdb[src] = src_port
        if dst[0] & 1:
            targets = [p for p in self._ports if p is not src_port]
        else:
            port = self._fdb.get(dst)
            targets = [port] if port is not None else [p for p in self._ports if p is not src_port]
        loop = asyncio.get_running_loop()
        now = loop.time()
        for target in targets:
            if target is src_port:
                continue
            for delivery in src_port.link.transmit(frame, now):
                if delivery.at <= now:
                    if target._direct is not None:
                        # Handed to the receiver's callback on the next turn of the
                        # loop, never inside the sender's own call.
                        loop.call_soon(target._receive, delivery.frame)
                    else:
                        target._receive(delivery.frame)
                else:
                    loop.call_at(delivery.at, target._receive, delivery.frame)


class VnetInterface(FrameDevice):
    """One port of a :class:`Switch`."""

    supports_direct = True

    def __init__(
        self, switch: Switch, mac: bytes, mtu: int = 1500, link: LinkModel | None = None
    ) -> None:
        super().__init__(mac, mtu)
        self.switch = switch
        self.link = link or LinkModel()
        switch.attach(self)

    @classmethod
    async def connect(
        cls,
        *,
        switch: str | Switch = "default",
        mac: str | bytes | None = None,
        mtu: int = 1500,
        loss: float = 0.0,
        duplicate: float = 0.0,
        reorder: float = 0.0,
        corrupt: float = 0.0,
        delay: float = 0.0,
        jitter: float = 0.0,
        seed: int = 0,
    ) -> VnetInterface:
        sw = switch if isinstance(switch, Switch) else Switch.named(switch)
        if mac is None or mac == "":
            raw = random_mac()
        elif isinstance(mac, str):
            raw = parse_mac(mac)
        else:
            raw = mac
        config = LinkConfig(
            loss=loss,
            duplicate=duplicate,
            reorder=reorder,
            corrupt=corrupt,
            delay=delay,
            jitter=jitter,
        )
        return cls(sw, raw, mtu, LinkModel(config, seed))

    async def _transmit(self, frame: bytes) -> None:
        self.switch.forward(self, frame)

    def _transmit_nowait(self, frame: bytes) -> bool:
        self.switch.forward(self, frame)
        return True

    def _close(self) -> None:
        self.switch.detach(self)
