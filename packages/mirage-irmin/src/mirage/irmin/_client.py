"""A store served over HTTP (by ``irmin serve`` or :class:`StoreServer`), used like a
local :class:`Store`.

Theory of operation: every method is one HTTP request on a kept-alive connection
(opened again if the server closed it). Answers map back to this package's errors:
no contents is :class:`PathError`, a merge with conflicts is :class:`MergeConflict`
listing every path with its three sides; anything else the server refuses is
:class:`RemoteError` with the status and the server's message.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

from ._errors import Conflict, IrminError, MergeConflict, PathError
from ._repo import Info, split_path

__all__ = ["LogEntry", "RemoteError", "RemoteStore"]

Path = str | tuple[str, ...] | list[str]
List = list  # the name ``list`` is a method of RemoteStore


class RemoteError(IrminError):
    """The server refused a request: ``status`` and its message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class LogEntry:
    """A commit as the server's ``/log`` lists it."""

    id: bytes
    parents: tuple[bytes, ...]
    date: int
    author: str
    message: str


def _side(value: object) -> tuple[int, bytes] | None:
    if not isinstance(value, list) or len(value) != 2:
        return None
    mode, oid = value
    return int(mode), bytes.fromhex(str(oid))


def _oid(value: object) -> bytes | None:
    return bytes.fromhex(value) if isinstance(value, str) else None


class RemoteStore:
    """The branch ``branch`` of the store served at ``url`` (``http://host:port``)."""

    def __init__(self, url: str, branch: str = "main", timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"not an http:// URL: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.branch = branch
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> RemoteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------

    def _request(
        self,
        method: str,
        route: str,
        params: dict[str, str] | None = None,
        body: bytes = b"",
        timeout: float | None = None,
    ) -> tuple[int, bytes]:
        query = {"branch": self.branch, **(params or {})}
        target = f"{route}?{urlencode(query)}"
        for attempt in range(2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._conn.timeout = timeout if timeout is not None else self.timeout
            if self._conn.sock is not None:
                self._conn.sock.settimeout(self._conn.timeout)
            try:
                self._conn.request(method, target, body=body)
                response = self._conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt or method not in ("GET",):
                    raise
                continue
            if response.getheader("connection", "").lower() == "close":
                self.close()
            return response.status, data
        raise AssertionError("unreachable")  # pragma: no cover

    def _json(self, method: str, route: str, params: dict[str, str] | None = None) -> object:
        status, data = self._request(method, route, params)
        return self._decode(status, data)

    @staticmethod
    def _decode(status: int, data: bytes) -> object:
        try:
            value = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise RemoteError(status, f"not JSON: {data[:60]!r}") from None
        if status == 409 and isinstance(value, dict) and "conflicts" in value:
            raise MergeConflict(
                tuple(
                    Conflict(
                        str(c["path"]),
                        str(c["reason"]),
                        _side(c["base"]),
                        _side(c["ours"]),
                        _side(c["theirs"]),
                    )
                    for c in value["conflicts"]
                )
            )
        if status != 200:
            message = value.get("error", "") if isinstance(value, dict) else ""
            raise RemoteError(status, str(message))
        return value

    @staticmethod
    def _key(path: Path) -> str:
        return quote("/".join(split_path(path)), safe="/")

    @staticmethod
    def _info(info: Info | None) -> dict[str, str]:
        if info is None:
            return {}
        return {
            "date": str(info.date),
            "message": info.message,
            "author": info.author,
            "email": info.email,
        }

    # -- the store ---------------------------------------------------------------

    def head(self) -> bytes | None:
        value = self._json("GET", "/head")
        return _oid(value.get("head")) if isinstance(value, dict) else None

    def find(self, path: Path) -> bytes | None:
        status, data = self._request("GET", f"/contents/{self._key(path)}")
        if status == 404:
            return None
        if status != 200:
            self._decode(status, data)
        return data

    def get(self, path: Path) -> bytes:
        value = self.find(path)
        if value is None:
            raise PathError("/".join(split_path(path)), "no contents")
        return value

    def mem(self, path: Path) -> bool:
        return self.find(path) is not None

    def list(self, path: Path = ()) -> List[tuple[str, str]]:
        status, data = self._request("GET", f"/list/{self._key(path)}")
        if status == 404:
            return []
        value = self._decode(status, data)
        assert isinstance(value, list)
        return [(str(name), str(kind)) for name, kind in value]

    def set(self, path: Path, value: bytes, info: Info | None = None) -> bytes | None:
        """Write contents (a commit, dated by ``info`` or the server's clock)."""
        status, data = self._request(
            "PUT", f"/contents/{self._key(path)}", self._info(info), bytes(value)
        )
        answer = self._decode(status, data)
        return _oid(answer.get("head")) if isinstance(answer, dict) else None

    def remove(self, path: Path, info: Info | None = None) -> bytes | None:
        status, data = self._request("DELETE", f"/contents/{self._key(path)}", self._info(info))
        answer = self._decode(status, data)
        return _oid(answer.get("head")) if isinstance(answer, dict) else None

    def branches(self) -> dict[str, bytes]:
        value = self._json("GET", "/branches")
        assert isinstance(value, dict)
        return {str(k): bytes.fromhex(v) for k, v in value.items()}

    def log(self, n: int | None = None) -> List[LogEntry]:
        value = self._json("GET", "/log", {"n": str(n)} if n is not None else {})
        assert isinstance(value, list)
        return [
            LogEntry(
                bytes.fromhex(e["id"]),
                tuple(bytes.fromhex(p) for p in e["parents"]),
                int(e["date"]),
                str(e["author"]),
                str(e["message"]),
            )
            for e in value
        ]

    def merge_with_branch(
        self, other: str, info: Info | None = None, strategy: str = "conflict"
    ) -> bytes | None:
        """Merge branch ``other`` into this one on the server (``strategy``: a name of
        :data:`mirage.irmin.merge.MERGES`); :class:`MergeConflict` on conflicts."""
        params = {"from": other, "strategy": strategy, **self._info(info)}
        status, data = self._request("POST", "/merge", params)
        answer = self._decode(status, data)
        return _oid(answer.get("head")) if isinstance(answer, dict) else None

    def wait(self, since: bytes | None, timeout: float = 30.0) -> bytes | None:
        """The head once it is not ``since`` (long poll); ``since`` itself if it did
        not move within ``timeout`` seconds."""
        params = {"since": since.hex() if since else "", "timeout": str(timeout)}
        status, data = self._request("GET", "/watch", params, timeout=timeout + self.timeout)
        value = self._decode(status, data)
        return _oid(value.get("head")) if isinstance(value, dict) else None

    def watch(
        self,
        callback: Callable[[bytes | None, bytes | None], bool | None],
        since: bytes | None = None,
        timeout: float = 30.0,
    ) -> None:
        """Call ``callback(old, new)`` for every move of the head after ``since``
        (the current head if ``None``), until the callback returns ``True``."""
        current = self.head() if since is None else since
        while True:
            new = self.wait(current, timeout)
            if new != current:
                old, current = current, new
                if callback(old, new):
                    return
