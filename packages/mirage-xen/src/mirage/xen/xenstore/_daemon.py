"""``mirage-xenstored``: the server core behind a Unix socket and domain rings
(asyncio driver).

Every socket client is domain 0, as with Xen's own daemons. With a hypervisor domain
of its own (``--xen-sim`` and ``--xen-domid`` for the simulated one), the daemon also
serves the domains the toolstack introduces, each over its shared ring page, as that
domain. A client that sends a header announcing more than 4096 bytes of payload is
disconnected, as Xen's xenstored does; a domain whose ring index is impossible gets
the ring's error field set and is no longer served; nothing a client sends stops the
daemon or affects other clients.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path
from typing import Protocol

from mirage.xen._hypervisor import Domain, HypervisorError
from mirage.xen.ring import RingError

from ._ring import ERROR_PROTO, ReconnectRequested, RingConnection
from ._server import Quota, XenstoreServer
from ._wire import XsDecodeError, pull_packet, push_packet

__all__ = ["XenstoreDaemon", "main"]

log = logging.getLogger("mirage.xen.xenstored")

DEFAULT_SOCKET = "/var/run/xenstored/socket"


class _Writer(Protocol):
    def write(self, data: bytes) -> None: ...

    def is_closing(self) -> bool: ...


class XenstoreDaemon:
    """``domain``: the hypervisor domain xenstored runs as, to serve domain rings."""

    def __init__(self, server: XenstoreServer | None = None, domain: Domain | None = None) -> None:
        self.server = server or XenstoreServer()
        self.domain = domain
        self._writers: dict[int, _Writer] = {}
        self._unix: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._rings: dict[int, asyncio.Task[None]] = {}

    async def start(self, path: str | os.PathLike[str]) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self._unix = await asyncio.start_unix_server(self._client, path=str(path))

    async def stop(self) -> None:
        for task in list(self._rings.values()):
            task.cancel()
        if self._rings:
            await asyncio.wait(list(self._rings.values()), timeout=5)
        if self._unix is not None:
            self._unix.close()
            for writer in list(self._writers.values()):
                if isinstance(writer, asyncio.StreamWriter):
                    writer.close()
            if self._handlers:
                await asyncio.wait(self._handlers, timeout=5)
            await self._unix.wait_closed()
            self._unix = None

    def _feed(self, conn: int, buf: bytearray) -> None:
        """Answer every whole request in ``buf`` (and remove it); raises
        :class:`XsDecodeError` for an oversized one."""
        while True:
            packet, used = pull_packet(buf)
            if packet is None:
                return
            del buf[:used]
            for target, out in self.server.handle(conn, packet):
                w = self._writers.get(target)
                if w is not None and not w.is_closing():
                    w.write(push_packet(out))
            if self.server.domain_events:
                self._domain_events()
            if self.server.log:
                for line in self.server.log:
                    log.info("control: %s", line)
                self.server.log.clear()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        conn = self.server.connect(0)
        self._writers[conn] = writer
        buf = bytearray()
        try:
            while data := await reader.read(65536):
                buf += data
                self._feed(conn, buf)
                await writer.drain()
        except XsDecodeError as err:
            log.info("dropping connection %d: %s", conn, err)
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass  # the client went away, or the daemon is stopping
        finally:
            self.server.disconnect(conn)
            del self._writers[conn]
            self._handlers.discard(task)
            writer.close()

    # -- domains ------------------------------------------------------------------

    def _domain_events(self) -> None:
        events, self.server.domain_events = self.server.domain_events, []
        for kind, domid, ref, port in events:
            old = self._rings.pop(domid, None)
            if old is not None:
                old.cancel()
            if kind != "introduce" or self.domain is None:
                continue
            try:
                ring = RingConnection(self.domain, domid, ref, port)
            except HypervisorError as err:
                log.warning("cannot reach domain %d's ring: %s", domid, err)
                continue
            self.serve_ring(ring)

    def serve_ring(self, ring: RingConnection) -> None:
        """Serve ``ring`` as its domain's connection (replacing any earlier one): how
        introduced domains are served, and how a xenstored in dom0 serves dom0's
        kernel (:meth:`RingConnection.local`)."""
        old = self._rings.pop(ring.domid, None)
        if old is not None:
            old.cancel()
        task = asyncio.get_running_loop().create_task(self._ring_client(ring.domid, ring))
        self._rings[ring.domid] = task

    async def _ring_client(self, domid: int, ring: RingConnection) -> None:
        conn = self.server.connect(domid)
        self._writers[conn] = ring
        buf = bytearray()
        try:
            while True:
                try:
                    data = await ring.read()
                except ReconnectRequested:
                    # A fresh connection: no watches, transactions or partial packets.
                    self.server.disconnect(conn)
                    del self._writers[conn]
                    conn = self.server.connect(domid)
                    self._writers[conn] = ring
                    buf.clear()
                    ring.reset()
                    continue
                if not data:
                    break
                buf += data
                self._feed(conn, buf)
        except XsDecodeError as err:
            ring.set_error(ERROR_PROTO)
            log.warning("no longer serving domain %d: %s", domid, err)
        except RingError as err:
            log.warning("no longer serving domain %d: %s", domid, err)
        except asyncio.CancelledError:
            pass  # released, or the daemon is stopping
        finally:
            self.server.disconnect(conn)
            del self._writers[conn]
            if self._rings.get(domid) is asyncio.current_task():
                del self._rings[domid]
            await ring.stop()


async def serve(
    path: str, quota: Quota, domain: Domain | None, local_ring: tuple[memoryview, int] | None = None
) -> None:
    daemon = XenstoreDaemon(XenstoreServer(quota), domain)
    if local_ring is not None and domain is not None:
        daemon.serve_ring(RingConnection.local(domain, domain.domid, *local_ring))
        log.info("serving the dom0 kernel's ring")
    await daemon.start(path)
    log.info("listening on %s", path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await daemon.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="mirage-xenstored", description="A xenstore daemon on a Unix socket."
    )
    parser.add_argument(
        "--socket",
        default=os.environ.get("XENSTORED_PATH", DEFAULT_SOCKET),
        help="the socket to listen on (default: $XENSTORED_PATH or %(default)s)",
    )
    parser.add_argument(
        "--xen-sim", help="serve the domains of this simulated hypervisor over their rings"
    )
    parser.add_argument(
        "--xen-domid", type=int, default=0, help="xenstored's own domain there (default: 0)"
    )
    parser.add_argument(
        "--linux-dom0",
        action="store_true",
        help="run as a real Xen host's xenstored in its Linux dom0: serve the dom0"
        " kernel's xenstore ring (/dev/xen/xenbus_backend) through /dev/xen",
    )
    defaults = Quota()
    parser.add_argument(
        "--entries-per-domain",
        type=int,
        default=defaults.entries_per_domain,
        help="nodes an unprivileged domain may own (default: %(default)s)",
    )
    parser.add_argument(
        "--entry-size",
        type=int,
        default=defaults.entry_size,
        help="bytes of an unprivileged domain's value (default: %(default)s)",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    quota = Quota(entries_per_domain=args.entries_per_domain, entry_size=args.entry_size)
    domain: Domain | None = None
    local_ring = None
    if args.linux_dom0:
        from mirage.xen.linux import LinuxDomain, xenbus_backend_ring

        try:
            domain = LinuxDomain(0)
            local_ring = xenbus_backend_ring()
        except HypervisorError as err:
            parser.exit(1, f"mirage-xenstored: {err}\n")
    elif args.xen_sim:
        from mirage.xen.sim import SimHypervisor

        domain = SimHypervisor(args.xen_sim).domain(args.xen_domid)
    try:
        asyncio.run(serve(args.socket, quota, domain, local_ring))
    finally:
        if domain is not None:
            domain.close()


if __name__ == "__main__":
    main()
