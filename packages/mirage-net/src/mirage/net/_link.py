"""A sans-IO model of a faulty link: what happens to each frame, at what time.

:class:`LinkModel` takes a frame and the current time and returns the deliveries it
causes: none (lost), one, or two (duplicated), each with its own delivery time and
maybe with a flipped bit. Every decision comes from a seeded :class:`random.Random`,
so a run is reproducible from its seed. Reordering holds a frame back by
``reorder_delay`` so that frames sent after it overtake it. Time is whatever clock
the caller uses: the asyncio switch passes its loop's time, simulations a virtual one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Delivery", "LinkConfig", "LinkModel"]


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """Fault probabilities (0..1) and delays (seconds) of one link."""

    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    corrupt: float = 0.0
    delay: float = 0.0
    jitter: float = 0.0
    reorder_delay: float = 0.005
    rate: float = 0.0
    """Link rate in bytes per second (0: unlimited): frames queue behind each other."""

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder", "corrupt"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], not {value}")
        for name in ("delay", "jitter", "reorder_delay", "rate"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    @property
    def perfect(self) -> bool:
        return self == LinkConfig()


@dataclass(frozen=True, slots=True)
class Delivery:
    """A frame the link delivers, and when."""

    at: float
    frame: bytes


@dataclass(slots=True)
class LinkStats:
    """Counters of a link model: frames sent and the faults applied to them."""

    sent: int = 0
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    corrupted: int = 0


class LinkModel:
    def __init__(self, config: LinkConfig | None = None, seed: int = 0) -> None:
        self.config = config or LinkConfig()
        self._rng = random.Random(seed)
        self._busy_until = 0.0
        self.stats = LinkStats()

    @property
    def config(self) -> LinkConfig:
        return self._config

    @config.setter
    def config(self, config: LinkConfig) -> None:
        self._config = config
        self._perfect = config.perfect

    def transmit(self, frame: bytes, now: float) -> list[Delivery]:
        c = self._config
        self.stats.sent += 1
        if self._perfect:
            return [Delivery(now, frame)]
        rng = self._rng
        start = now
        if c.rate > 0:
            start = max(now, self._busy_until)
            self._busy_until = start + len(frame) / c.rate
            start = self._busy_until
        if c.loss and rng.random() < c.loss:
            self.stats.lost += 1
            return []
        copies = 1
        if c.duplicate and rng.random() < c.duplicate:
            copies = 2
            self.stats.duplicated += 1
        out = []
        for _ in range(copies):
            at = start + c.delay + (rng.uniform(0, c.jitter) if c.jitter else 0.0)
            if c.reorder and rng.random() < c.reorder:
                at += c.reorder_delay
                self.stats.reordered += 1
            data = frame
            if c.corrupt and frame and rng.random() < c.corrupt:
                raw = bytearray(frame)
                bit = rng.randrange(len(raw) * 8)
                raw[bit // 8] ^= 1 << (bit % 8)
                data = bytes(raw)
                self.stats.corrupted += 1
            out.append(Delivery(at, data))
        return out
