"""Fetch from and push to Git servers with the pack protocol (version 0; fetches also
in version 2).

Three transports: a local path runs ``git upload-pack`` / ``git receive-pack`` on it
(as ``git`` itself does for local and ``ssh`` remotes), ``git://host[:port]/path``
talks to ``git daemon`` over TCP, and ``http://`` speaks the smart HTTP protocol
(``GET info/refs?service=...``, then one ``POST`` of the request) to ``git
http-backend`` or any Git HTTP server. The protocol itself is in :mod:`._wire`; this
module only moves its bytes (blocking I/O: call it from a thread in asyncio code).
"""

from __future__ import annotations

import io
import os
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
from ._objects import ObjectType
from ._pack import Pack, index_pack
from ._repo import Repo
from ._sync import NotFastForward, pack_for, thin_pack_for
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
from ._wire2 import (
    decode_packfile,
    encode_fetch_v2,
    encode_ls_refs,
    parse_capabilities,
    parse_ls_refs,
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

    def read_v2(self) -> list[bytes | int]:
        """Protocol v2 packets up to a flush (delimiters included, as ints)."""
        out: list[bytes | int] = []
        while True:
            head = self.read_exact(4)
            if head.strip(b"0123456789abcdef"):
                raise DecodeError("remote", f"bad pkt-line length {head!r}")
            size = int(head, 16)
            if size < 4:
                if size == 3:
                    raise DecodeError("remote", "bad pkt-line length 3")
                out.append(size)
                if size == 0:
                    return out
                continue
            out.append(self.read_exact(size - 4))

    def send(self, data: bytes) -> None:
        self.writer.write(data)
        self.writer.flush()

    def finish(self) -> None:
        """The request is complete: close our side of a pipe (not of a socket)."""
        if self.writer is not self.reader and not self.writer.closed:
            self.writer.close()


class _HttpConnection(_Connection):
    """Smart HTTP: the advertisement comes from ``GET``; what is sent is buffered and
    posted when a response is next read (or at :meth:`finish`), each ``POST`` a
    request of its own (the server keeps no state between them). ``protocol=2``
    sends ``Git-Protocol: version=2`` with every request."""

    def __init__(self, url: str, service: str, protocol: int = 0) -> None:
        self.url = url.rstrip("/")
        self.service = service = f"git-{service}"
        self._headers = {"Git-Protocol": "version=2"} if protocol == 2 else {}
        self._out = bytearray()
        get = urllib.request.Request(
            f"{self.url}/info/refs?service={service}", headers=self._headers
        )
        try:
            with urllib.request.urlopen(get, timeout=30) as r:
                body = r.read()
                kind = r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            raise IrminError(f"{url}: HTTP {e.code} {e.reason}") from None
        if kind != f"application/x-{service}-advertisement":
            raise DecodeError(url, f"not a smart HTTP server (Content-Type {kind!r})")
        pos = 0
        if protocol != 2 or body[4:14] == b"# service=":
            lines, pos = read_pkt_lines(body, 0, "smart HTTP advertisement")
            if not lines or lines[0].rstrip(b"\n") != b"# service=" + service.encode():
                raise DecodeError(url, "no service line in the advertisement")
        super().__init__(io.BytesIO(body[pos:]), self, lambda: None)  # type: ignore[arg-type]

    def write(self, data: bytes) -> None:
        self._out += data

    def flush(self) -> None:
        pass

    def read_exact(self, n: int) -> bytes:
        if self._out:
            self.post()
        return super().read_exact(n)

    def post(self) -> None:
        data, self._out = bytes(self._out), bytearray()
        if not data or data == b"0000":
            return  # nothing wanted: no request
        request = urllib.request.Request(
            f"{self.url}/{self.service}",
            data=data,
            headers={"Content-Type": f"application/x-{self.service}-request", **self._headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as r:
                self.reader = io.BytesIO(r.read())
        except urllib.error.HTTPError as e:
            raise IrminError(f"{self.url}/{self.service}: HTTP {e.code} {e.reason}") from None

    def finish(self) -> None:
        self.post()


def _connect(url: str, service: str, protocol: int = 0) -> _Connection:
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        return _HttpConnection(url, service, protocol)
    if parts.scheme == "git":
        sock = socket.create_connection((parts.hostname or "localhost", parts.port or 9418), 30)
        stream = sock.makefile("rwb")
        host = parts.hostname or "localhost"
        extra = b"\0version=2\0" if protocol == 2 else b""
        stream.write(
            pkt_line(
                b"git-%s %s\0host=%s\0%s"
                % (service.encode(), parts.path.encode(), host.encode(), extra)
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
    env = {**os.environ, "GIT_PROTOCOL": "version=2"} if protocol == 2 else None
    proc = subprocess.Popen(
        [git, service, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )
    assert proc.stdin is not None and proc.stdout is not None

    def close_process() -> None:
        assert proc.stdin is not None and proc.stdout is not None
        if not proc.stdin.closed:
            proc.stdin.close()
        proc.stdout.close()
        proc.wait(30)

    return _Connection(proc.stdout, proc.stdin, close_process)  # type: ignore[arg-type]


def _sha1_only(backend: Backend) -> None:
    algo = getattr(backend, "object_format", "sha1")
    if algo != "sha1":
        raise IrminError(f"sync with Git servers is for SHA-1 repositories, not {algo}")


def install_pack(dst: Backend, pack: bytes) -> int:
    """Store a received pack in ``dst``, checked in full; the number of objects.

    A thin pack (deltas against objects ``dst`` already holds, as a server sends when
    the client asks for ``thin-pack``) is resolved against ``dst`` and its objects
    written whole: a repository never holds a pack whose bases are outside it."""
    algo = getattr(dst, "object_format", "sha1")
    try:
        index = index_pack(pack, None, "received pack", algo)
    except DecodeError as e:
        if "delta base" not in e.reason:
            raise
    else:
        if isinstance(dst, GitBackend):
            dst.add_pack(pack, [(oid, off, index.crcs[oid]) for oid, off in index.offsets.items()])
            return len(index.offsets)
        p = Pack(pack, index, "received pack", algo)
        dst.write_many([obj for oid in p.ids() if (obj := p.get(oid)) is not None])
        return len(index.offsets)

    def lookup(oid: bytes) -> tuple[ObjectType, bytes] | None:
        return dst.read(oid) if dst.contains(oid) else None

    index = index_pack(pack, lookup, "received thin pack", algo)
    p = Pack(pack, index, "received thin pack", algo)
    dst.write_many([obj for oid in p.ids() if (obj := p.get(oid, lookup)) is not None])
    return len(index.offsets)


_install = install_pack


def fetch_remote(
    url: str, dst: Backend, refs: dict[str, str] | None = None, protocol: int = 0
) -> dict[str, bytes]:
    """Fetch ``refs`` (remote name to local name; default every branch to
    ``refs/remotes/origin/<branch>``) from a Git server; returns the new values.
    ``protocol=2`` speaks protocol version 2 (``ls-refs`` and ``fetch``; over a path,
    ``git://`` or smart HTTP)."""
    _sha1_only(dst)
    if protocol == 2:
        return _fetch_v2(url, dst, refs)
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
        if wants and "multi_ack_detailed" in adv.capabilities:
            _negotiate(conn, dst, wants, adv.capabilities)
        elif wants:
            haves = list(dst.list_refs().values())[:256]
            caps = [_AGENT] + [c for c in ("ofs-delta", "thin-pack") if c in adv.capabilities]
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


HAVES_PER_ROUND = 32
MAX_HAVES = 2048


def _history(dst: Backend) -> list[bytes]:
    """The commits ``dst`` holds under its refs, newest first: what to offer as haves."""
    repo = Repo(dst)
    tips = []
    for oid in dst.list_refs().values():
        try:
            repo.read_commit(oid)
        except IrminError:
            continue  # a tag, or an object not held
        tips.append(oid)
    return repo.history(tips)[:MAX_HAVES] if tips else []


def _negotiate(
    conn: _Connection, dst: Backend, wants: list[bytes], offered: frozenset[str]
) -> None:
    """Fetch with ``multi_ack_detailed``: offer our commits ``HAVES_PER_ROUND`` at a
    time, newest first, until the server is ready (or we run out), then ``done``."""
    caps = [_AGENT, "multi_ack_detailed"]
    caps += [c for c in ("ofs-delta", "thin-pack") if c in offered]
    request = encode_fetch(wants, [], caps)
    head = request[: -len(pkt_line(b"done\n"))]  # wants and a flush: no done yet
    # Over smart HTTP every round is a request of its own: it repeats the wants and
    # the haves the server acknowledged so far (as git does), then the new ones.
    stateless = isinstance(conn, _HttpConnection)
    acked: list[bytes] = []
    if not stateless:
        conn.send(head)
    haves = _history(dst)
    repo = Repo(dst)
    common: set[bytes] = set()

    def state() -> bytes:
        return head + b"".join(pkt_line(b"have %s\n" % h.hex().encode()) for h in acked)

    def mark(oid: bytes) -> None:  # a common commit and what it descends from
        stack = [oid]
        while stack:
            c = stack.pop()
            if c not in common:
                common.add(c)
                stack.extend(repo.read_commit(c).parents)

    ready = False
    for start in range(0, len(haves), HAVES_PER_ROUND):
        batch = haves[start : start + HAVES_PER_ROUND]
        if all(h in common for h in batch):
            continue
        lines = b"".join(pkt_line(b"have %s\n" % h.hex().encode()) for h in batch)
        conn.send((state() if stateless else b"") + lines + b"0000")
        for ack in _read_acks(conn):
            if ack[1] in ("common", "ready") and dst.contains(ack[0]):
                if ack[0] not in acked:
                    acked.append(ack[0])
                mark(ack[0])  # no need to offer what it descends from
            ready = ready or ack[1] == "ready"
        if ready:
            break
    conn.send((state() if stateless else b"") + pkt_line(b"done\n"))
    conn.finish()
    _install(dst, split_fetch_response(conn.reader.read()))


def _read_acks(conn: _Connection) -> list[tuple[bytes, str]]:
    """The ``ACK <id> common|ready`` lines the server sends for a round, up to its
    ``NAK``."""
    out: list[tuple[bytes, str]] = []
    while True:
        head = conn.read_exact(4)
        if head.strip(b"0123456789abcdef") or int(head, 16) < 4:
            raise DecodeError("remote", f"bad pkt-line in negotiation {head!r}")
        line = conn.read_exact(int(head, 16) - 4).rstrip(b"\n")
        if line == b"NAK":
            return out
        parts = line.split(b" ")
        if parts[0] == b"ERR":
            raise IrminError(f"remote error: {line[4:].decode(errors='replace')}")
        if parts[0] != b"ACK" or len(parts) not in (2, 3) or len(parts[1]) != 40:
            raise DecodeError("remote", f"unexpected negotiation line {line[:80]!r}")
        try:
            oid = bytes.fromhex(parts[1].decode("ascii"))
        except ValueError:
            raise DecodeError("remote", f"bad id in {line[:80]!r}") from None
        out.append((oid, parts[2].decode("ascii", "replace") if len(parts) == 3 else ""))


def _fetch_v2(url: str, dst: Backend, refs: dict[str, str] | None) -> dict[str, bytes]:
    conn = _connect(url, "upload-pack", protocol=2)
    try:
        caps = parse_capabilities(conn.read_v2())
        if "ls-refs" not in caps.commands or "fetch" not in caps.commands:
            raise IrminError(f"{url}: the server offers no ls-refs and fetch")
        prefixes = sorted(refs) if refs is not None else ["refs/heads/"]
        conn.send(encode_ls_refs(prefixes, [_AGENT]))
        remote = parse_ls_refs(conn.read_v2())
        if refs is None:
            refs = {
                n: "refs/remotes/origin/" + n.removeprefix("refs/heads/")
                for n in remote
                if n.startswith("refs/heads/")
            }
        missing = [n for n in refs if n not in remote]
        if missing:
            raise IrminError(f"the remote has no ref {missing[0]!r}")
        wants = sorted({remote[n] for n in refs if not dst.contains(remote[n])})
        if wants:
            haves = list(dst.list_refs().values())[:256]
            conn.send(encode_fetch_v2(wants, haves, [_AGENT]))
            _install(dst, decode_packfile(conn.read_v2()))
        conn.finish()
    finally:
        conn.close()
    out = {}
    for remote_name, local in refs.items():
        oid = remote[remote_name]
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
    _sha1_only(src)
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
        if "no-thin" in adv.capabilities or old is None or not src.contains(old):
            pack = pack_for(src, [new], held)
        else:  # deltas against the remote's head, which it holds
            pack = thin_pack_for(src, [new], [old, *held])
        caps = ["report-status", _AGENT]
        conn.send(encode_push([(old, new, target)], pack, caps))
        conn.finish()
        report = parse_report(conn.read_until_flush())
    finally:
        conn.close()
    if report.get(target, "missing from the report") is not None:
        raise PushRejected(f"{target}: {report.get(target, 'missing from the report')}")
    return new
