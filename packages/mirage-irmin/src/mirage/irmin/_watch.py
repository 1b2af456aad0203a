"""Watches driven by the file system: noticing refs moved by other processes.

Theory of operation: a :class:`Repo` calls its watches at once for its own writes;
the writes of others (another process, ``git commit``, ``git update-ref``, a push
received by ``git receive-pack``) are seen only when the refs are read again.
:class:`RefPoller` decides when (sans-IO, explicit time): :meth:`RefPoller.get_timer`
is the next deadline, :meth:`RefPoller.handle_timer` polls the refs of every watch
(:meth:`Repo.poll`, which reads the ref files and ``packed-refs``) once it is due.
:func:`run_poller` drives it in asyncio, reading the refs in a worker thread.
"""

from __future__ import annotations

import asyncio
import time

from ._repo import Repo

__all__ = ["RefPoller", "run_poller"]


class RefPoller:
    """Poll ``repo``'s watched refs every ``interval`` seconds, from ``now``."""

    def __init__(self, repo: Repo, interval: float = 1.0, now: float = 0.0) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive: {interval}")
        self.repo = repo
        self.interval = interval
        self._deadline = now

    def get_timer(self) -> float:
        """When :meth:`handle_timer` has work next."""
        return self._deadline

    def handle_timer(self, now: float) -> bool:
        """Poll if due (the watches of moved refs are called); whether it polled."""
        if now < self._deadline:
            return False
        self._deadline = now + self.interval
        self.repo.poll()
        return True


async def run_poller(poller: RefPoller, stop: asyncio.Event | None = None) -> None:
    """Drive ``poller`` until ``stop`` is set (forever if ``None``); the ref files are
    read in a worker thread, and the watches are called there."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        now = time.monotonic()
        if now >= poller.get_timer():
            await asyncio.to_thread(poller.handle_timer, now)
            continue
        try:
            await asyncio.wait_for(stop.wait(), poller.get_timer() - now)
        except TimeoutError:
            pass
