"""Fetch from and push to Git servers with the pack protocol (version 0).

Three transports: a local path runs ``git upload-pack`` / ``git receive-pack`` on it
(as ``git`` itself does for local and ``ssh`` remotes), ``git://host[:port]/path``
talks to ``git daemon`` over TCP, and ``http://`` speaks the smart HTTP protocol
(``GET info/refs?service=...``, then one ``POST`` of the request) to ``git
http-backend`` or any Git HTTP server. The protocol itself is in :mod:`._wire`; this
module only moves its bytes (blocking I/O: call it from a thread in asyncio code).
"""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import BinaryIO
from urllib.parse import urlsplit

from ._backend import Backend
from ._errors import DecodeError, IrminError
from ._git import GitBackend
from ._pack import Pack
from ._repo import Repo
from ._sync import NotFastForward, pack_for
from ._wire import (
    PushRejected,
    encode_fetch,
    encode_push,
    parse_advertisement,
    parse_report,
    pkt_line,
    read_pkt_lines,
    split_fetch_response,
)

__all__ = ["fetch_remote", "push_remote"]

_AGENT = "agent=mirage-irmin/0.1"


class _Connection:
    def __init__(self, reader: BinaryIO, writer: BinaryIO, close: Callable[[], None]) -> None:
        self.reader = reader
        self.writer = writer
        self.close = close

    def read_exact(self, n: int) -> bytes:
        data = self.reader.read(n)
        if len(data) != n:
            raise DecodeError("remote", "connection closed early")
        return data

    def read_until_flush(self) -> bytes:
        out = bytearray()
        while True:
            head = self.read_exact(4)
            out += head
            if head.strip(b"0123456789abcdef"):
                raise DecodeError("remote", f"bad pkt-line length {head!r}")
            size = int(head, 16)
            if size == 0:
                return bytes(out)
            if size < 4:
                raise DecodeError("remote", f"bad pkt-line length {size}")
            out += self.read_exact(size - 4)

    def send(self, data: bytes) -> None:
        self.writer.write(data)
        self.writer.flush()

    def finish(self) -> None:
        """The request is complete: close our side of a pipe (not of a socket)."""
        if self.writer is not self.reader and not self.writer.closed:
            self.writer.close()


class _HttpConnection(_Connection):
    """Smart HTTP: the advertisement comes from ``GET``; what is sent is buffered and
    posted when the response is first read."""

    def __init__(self, url: str, service: str) -> None:
        self.url = url.rstrip("/")
        self.service = service = f"git-{service}"
        self._out = bytearray()
        try:
            with urllib.request.urlopen(f"{self.url}/info/refs?service={service}", timeout=30) as r:
                body = r.read()
                kind = r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            raise IrminError(f"{url}: HTTP {e.code} {e.reason}") from None
        if kind != f"application/x-{service}-advertisement":
            raise DecodeError(url, f"not a smart HTTP server (Content-Type {kind!r})")
        lines, pos = read_pkt_lines(body, 0, "smart HTTP advertisement")
        if not lines or lines[0].rstrip(b"\n") != b"# service=" + service.encode():
            raise DecodeError(url, "no service line in the advertisement")
        super().__init__(io.BytesIO(body[pos:]), self, lambda: None)  # type: ignore[arg-type]

    def write(self, data: bytes) -> None:
        self._out += data

    def flush(self) -> None:
        pass

    def post(self) -> None:
        if self._out == b"0000":
            return  # nothing wanted: no request
        request = urllib.request.Request(
            f"{self.url}/{self.service}",
            data=bytes(self._out),
            headers={"Content-Type": f"application/x-{self.service}-request"},
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as r:
                self.reader = io.BytesIO(r.read())
        except urllib.error.HTTPError as e:
            raise IrminError(f"{self.url}/{self.service}: HTTP {e.code} {e.reason}") from None

    def finish(self) -> None:
        self.post()


def _connect(url: str, service: str) -> _Connection:
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        return _HttpConnection(url, service)
    if parts.scheme == "git":
        sock = socket.create_connection((parts.hostname or "localhost", parts.port or 9418), 30)
        stream = sock.makefile("rwb")
        host = parts.hostname or "localhost"
        stream.write(
            pkt_line(
                b"git-%s %s\0host=%s\0" % (service.encode(), parts.path.encode(), host.encode())
            )
        )
        stream.flush()

        def close_socket() -> None:
            stream.close()
            sock.close()

        return _Connection(stream, stream, close_socket)  # type: ignore[arg-type]
    if parts.scheme not in ("", "file"):
        raise IrminError(f"unsupported remote {url!r} (a path, file:// or git://)")
    git = shutil.which("git")
    if git is None:
        raise IrminError("local remotes need the git command (its upload-pack and receive-pack)")
    path = parts.path if parts.scheme == "file" else url
    proc = subprocess.Popen([git, service, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None

    def close_process() -> None:
        assert proc.stdin is not None and proc.stdout is not None
        if not proc.stdin.closed:
            proc.stdin.close()
        proc.stdout.close()
        proc.wait(30)

    return _Connection(proc.stdout, proc.stdin, close_process)  # type: ignore[arg-type]


def _install(dst: Backend, pack: bytes) -> None:
    if isinstance(dst, GitBackend):
        dst.add_pack(pack)
        return
    p = Pack.from_bytes(pack, "received pack")
    dst.write_many([obj for oid in p.ids() if (obj := p.get(oid)) is not None])


def fetch_remote(url: str, dst: Backend, refs: dict[str, str] | None = None) -> dict[str, bytes]:
    """Fetch ``refs`` (remote name to local name; default every branch to
    ``refs/remotes/origin/<branch>``) from a Git server; returns the new values."""
    conn = _connect(url, "upload-pack")
    try:
        lines, _ = read_pkt_lines(conn.read_until_flush(), 0, "ref advertisement")
        adv = parse_advertisement(lines)
        if refs is None:
            refs = {
                n: "refs/remotes/origin/" + n.removeprefix("refs/heads/")
                for n in adv.refs
                if n.startswith("refs/heads/")
            }
        missing = [n for n in refs if n not in adv.refs]
        if missing:
            raise IrminError(f"the remote has no ref {missing[0]!r}")
        wants = sorted({adv.refs[n] for n in refs if not dst.contains(adv.refs[n])})
        if wants:
            haves = list(dst.list_refs().values())[:256]
            caps = [_AGENT] + (["ofs-delta"] if "ofs-delta" in adv.capabilities else [])
            conn.send(encode_fetch(wants, haves, caps))
            conn.finish()
            response = conn.reader.read()
            pack = split_fetch_response(response)
            _install(dst, pack)
        else:
            conn.send(b"0000")
    finally:
        conn.close()
    out = {}
    for remote_name, local in refs.items():
        oid = adv.refs[remote_name]
        old = dst.get_ref(local)
        if old != oid:
            dst.update_ref(local, old, oid)
        out[local] = oid
    return out


def push_remote(
    src: Backend, url: str, branch: str, remote_branch: str | None = None, force: bool = False
) -> bytes:
    """Push ``refs/heads/<branch>`` to a Git server (as ``remote_branch``); a
    fast-forward unless ``force``. Returns the pushed head."""
    name = f"refs/heads/{branch}"
    target = f"refs/heads/{remote_branch or branch}"
    new = src.get_ref(name)
    if new is None:
        raise IrminError(f"no branch {branch!r} to push")
    conn = _connect(url, "receive-pack")
    try:
        lines, _ = read_pkt_lines(conn.read_until_flush(), 0, "ref advertisement")
        adv = parse_advertisement(lines)
        old = adv.refs.get(target)
        if old == new:
            conn.send(b"0000")
            return new
        if (
            old is not None
            and not force
            and (not src.contains(old) or not Repo(src).is_ancestor(old, new))
        ):
            raise NotFastForward(f"{target}: {new.hex()} does not descend from {old.hex()}")
        held = {o for o in adv.refs.values() if src.contains(o)}
        pack = pack_for(src, [new], held)
        caps = ["report-status", _AGENT]
        conn.send(encode_push([(old, new, target)], pack, caps))
        conn.finish()
        report = parse_report(conn.read_until_flush())
    finally:
        conn.close()
    if report.get(target, "missing from the report") is not None:
        raise PushRejected(f"{target}: {report.get(target, 'missing from the report')}")
    return new
