"""Watches woken by the kernel: Linux inotify on the directories that hold refs.

Theory of operation: a ref moves when a file is renamed over it (``<ref>.lock``),
created, deleted, or when ``packed-refs`` is rewritten; each is an inotify event in
the ref's directory or in the repository's. :class:`RefNotifier` watches those
directories (libc's ``inotify_init1``/``inotify_add_watch`` through ``ctypes``, no
compiled code of ours) and, when its descriptor is readable, drains the events
(:func:`parse_events`, total) and reads the watched refs again (:meth:`Repo.poll`),
so the watches of refs moved by another process are called at once. Directories
made later (``refs/heads/a/`` for ``refs/heads/a/b``) are added at every wake-up.
:func:`run_watcher` drives it in asyncio, and falls back to polling
(:class:`RefPoller`) where inotify is missing (not Linux, or no watches left).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import struct
import sys
import time
from pathlib import Path

from ._repo import Repo
from ._watch import RefPoller, run_poller

__all__ = ["RefNotifier", "inotify_available", "parse_events", "run_watcher"]

IN_MODIFY = 0x002
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_Q_OVERFLOW = 0x4000
_MASK = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
_EVENT = struct.Struct("=iIII")  # wd, mask, cookie, len; then the name


def parse_events(data: bytes) -> list[tuple[int, int, bytes]]:
    """``(watch descriptor, mask, name)`` of each whole event in ``data`` (a read of
    an inotify descriptor); a truncated one at the end is ignored."""
    out = []
    pos = 0
    while pos + _EVENT.size <= len(data):
        wd, mask, _cookie, n = _EVENT.unpack_from(data, pos)
        end = pos + _EVENT.size + n
        if end > len(data):
            break
        out.append((wd, mask, data[pos + _EVENT.size : end].rstrip(b"\0")))
        pos = end
    return out


class _Libc:
    def __init__(self) -> None:
        if not sys.platform.startswith("linux"):
            raise OSError("inotify is Linux's")
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        try:
            self.init1 = libc.inotify_init1
            self.add_watch = libc.inotify_add_watch
        except AttributeError:
            raise OSError("this libc has no inotify") from None
        self.init1.argtypes = [ctypes.c_int]
        self.init1.restype = ctypes.c_int
        self.add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self.add_watch.restype = ctypes.c_int


_libc: _Libc | None = None


def _inotify_fd() -> int:
    """A new non-blocking inotify descriptor (``OSError`` if there is none)."""
    global _libc
    if _libc is None:
        _libc = _Libc()
    fd: int = _libc.init1(_IN_NONBLOCK | _IN_CLOEXEC)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"inotify_init1: {os.strerror(err)}")
    return fd


def inotify_available() -> bool:
    """Whether inotify can be used here."""
    try:
        os.close(_inotify_fd())
    except OSError:
        return False
    return True


class RefNotifier:
    """Inotify watches on the directories of ``repo``'s watched refs (``OSError`` if
    inotify is unavailable)."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        base = getattr(repo.backend, "git_dir", None) or getattr(repo.backend, "root", None)
        if base is None:
            raise OSError("the backend keeps no refs in files")
        self.base = Path(base)
        self._fd = _inotify_fd()
        self._watched: dict[Path, int] = {}
        try:
            self.refresh()
        except OSError:
            self.close()
            raise

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def directories(self) -> set[Path]:
        """The directories to watch: the repository's, ``refs/heads`` and the nearest
        existing directory of each watched ref."""
        out = {self.base, self.base / "refs", self.base / "refs" / "heads"}
        for w in self.repo._watches:
            name = self.repo.backend.head() if w.ref == "HEAD" else w.ref
            d = (self.base / name).parent
            while not d.is_dir() and d != self.base:
                d = d.parent
            out.add(d)
        return {d for d in out if d.is_dir()}

    def refresh(self) -> None:
        """Watch the directories made since (cheap for those already watched)."""
        for d in self.directories() - set(self._watched):
            assert _libc is not None
            wd = _libc.add_watch(self._fd, os.fsencode(d), _MASK)
            if wd < 0:
                err = ctypes.get_errno()
                raise OSError(err, f"inotify_add_watch {d}: {os.strerror(err)}")
            self._watched[d] = wd

    def drain(self) -> list[tuple[int, int, bytes]]:
        """The events queued now (none if there are none)."""
        events: list[tuple[int, int, bytes]] = []
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return events
            if not data:
                return events
            events += parse_events(data)

    def handle_readable(self) -> bool:
        """Drain the events; if there were any, watch new directories and read the refs
        again (the watches of moved refs are called). Whether there were any."""
        if not self.drain():
            return False
        self.refresh()
        self.repo.poll()
        return True


async def run_watcher(repo: Repo, stop: asyncio.Event | None = None, interval: float = 1.0) -> None:
    """Call ``repo``'s watches when others move their refs, until ``stop`` is set:
    woken by inotify (and reading the refs every ``interval`` seconds all the same,
    in case an event was lost), or polling every ``interval`` seconds without it."""
    stop = stop or asyncio.Event()
    try:
        notifier = RefNotifier(repo)
    except OSError:
        await run_poller(RefPoller(repo, interval, time.monotonic()), stop)
        return
    loop = asyncio.get_running_loop()
    woken = asyncio.Event()
    loop.add_reader(notifier.fileno(), woken.set)
    try:
        await asyncio.to_thread(repo.poll)
        while not stop.is_set():
            waits = [asyncio.ensure_future(woken.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waits, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
            woken.clear()
            if not await asyncio.to_thread(notifier.handle_readable):
                await asyncio.to_thread(repo.poll)
    finally:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(notifier.fileno())
        notifier.close()
