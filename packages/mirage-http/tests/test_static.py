"""Static files from a key-value store: types, validators, 304, ranges, index files,
no traversal."""

from __future__ import annotations

import asyncio
from email.utils import formatdate

import httpx
import pytest
from conftest import StartServer

from mirage.http import Request, Response, StaticFiles, content_type, parse_range
from mirage.kv.memory import MemoryKv

FILES = {
    "index.html": b"<h1>home</h1>",
    "docs/index.html": b"<h1>docs</h1>",
    "docs/guide.txt": b"0123456789abcdefghij",
    "img/logo.PNG": b"\x89PNG....",
    "empty": b"",
    "caf\u00e9.txt": b"accent",
    "big.bin": bytes(range(256)) * 8192,  # 2 MiB: streamed in pieces
}


def store() -> MemoryKv:
    return asyncio.run(MemoryKv.connect(contents=FILES))


def get(files: StaticFiles, target: str, method: str = "GET", **headers: str) -> Response:
    request = Request(method, target, [(k.replace("_", "-"), v) for k, v in headers.items()])
    return asyncio.run(files(request))


def header(response: Response, name: str) -> str | None:
    for raw, v in response.headers:
        n = raw.decode() if isinstance(raw, bytes) else raw
        if n == name:
            return v.decode() if isinstance(v, bytes) else v
    return None


def body(response: Response) -> bytes:
    if isinstance(response.body, bytes):
        return response.body

    async def collect() -> bytes:
        assert not isinstance(response.body, bytes)
        return b"".join([piece async for piece in response.body])

    return asyncio.run(collect())


@pytest.fixture
def files() -> StaticFiles:
    return StaticFiles(store())


def test_content_types() -> None:
    assert content_type("a.html") == "text/html; charset=utf-8"
    assert content_type("x/logo.PNG") == "image/png"
    assert content_type("archive.tar.gz") == "application/gzip"
    assert content_type("README") == "application/octet-stream"
    assert content_type("weird.") == "application/octet-stream"


def test_files_and_index(files: StaticFiles) -> None:
    r = get(files, "/")
    assert (r.status, body(r), header(r, "content-type")) == (
        200,
        b"<h1>home</h1>",
        "text/html; charset=utf-8",
    )
    assert header(
        r,
        "etag",
    ).startswith('"')  # type: ignore[union-attr]
    assert header(
        r,
        "last-modified",
    ).endswith("GMT")  # type: ignore[union-attr]
    assert body(get(files, "/docs/")) == b"<h1>docs</h1>"
    r = get(files, "/docs?x=1")
    assert (r.status, header(r, "location")) == (301, "/docs/?x=1")
    assert body(get(files, "/caf%C3%A9.txt")) == b"accent"
    assert get(files, "/img/logo.PNG").status == 200
    assert body(get(files, "/empty")) == b""
    assert get(files, "/missing").status == 404
    assert get(files, "/img/").status == 404  # a dictionary without an index
    big = get(files, "/big.bin")
    assert header(big, "content-length") == str(len(FILES["big.bin"]))
    assert not isinstance(big.body, bytes) and body(big) == FILES["big.bin"]


@pytest.mark.parametrize(
    "target",
    [
        "/../etc/passwd",
        "/docs/../../etc/passwd",
        "/%2e%2e/etc/passwd",
        "/docs/%2E%2E/%2e%2e/x",
        "/..%2fetc%2fpasswd",
        "/docs/..%5c..%5cx",
        "/index.html%00.txt",
        "/./index.html",
        "/%ff%fe",
    ],
)
def test_no_traversal(files: StaticFiles, target: str) -> None:
    assert get(files, target).status == 404


def test_methods(files: StaticFiles) -> None:
    r = get(files, "/", "POST")
    assert (r.status, header(r, "allow")) == (405, "GET, HEAD")
    r = get(files, "/docs/guide.txt", "HEAD")
    assert (r.status, body(r), header(r, "content-length")) == (200, b"", "20")


def test_conditional_requests(files: StaticFiles) -> None:
    first = get(files, "/docs/guide.txt")
    etag = header(first, "etag")
    modified = header(first, "last-modified")
    assert etag and modified
    assert get(files, "/docs/guide.txt", if_none_match=etag).status == 304
    assert get(files, "/docs/guide.txt", if_none_match=f'"x", W/{etag}').status == 304
    assert get(files, "/docs/guide.txt", if_none_match="*").status == 304
    assert get(files, "/docs/guide.txt", if_none_match='"other"').status == 200
    assert get(files, "/docs/guide.txt", if_modified_since=modified).status == 304
    assert get(files, "/docs/guide.txt", if_modified_since=formatdate(0, usegmt=True)).status == 200
    assert get(files, "/docs/guide.txt", if_modified_since="garbage").status == 200
    # If-None-Match wins over If-Modified-Since.
    r = get(files, "/docs/guide.txt", if_none_match='"other"', if_modified_since=modified)
    assert r.status == 200


def test_ranges(files: StaticFiles) -> None:
    r = get(files, "/docs/guide.txt", range="bytes=2-5")
    assert (r.status, body(r), header(r, "content-range")) == (206, b"2345", "bytes 2-5/20")
    assert body(get(files, "/docs/guide.txt", range="bytes=-3")) == b"hij"
    assert body(get(files, "/docs/guide.txt", range="bytes=15-")) == b"fghij"
    assert body(get(files, "/docs/guide.txt", range="bytes=15-100")) == b"fghij"
    r = get(files, "/docs/guide.txt", range="bytes=30-40")
    assert (r.status, header(r, "content-range")) == (416, "bytes */20")
    # Malformed or foreign units are ignored: the whole file.
    assert get(files, "/docs/guide.txt", range="bytes=5-2").status == 200
    assert get(files, "/docs/guide.txt", range="lines=1-2").status == 200
    # If-Range with a stale validator: the whole file.
    assert get(files, "/docs/guide.txt", range="bytes=0-1", if_range='"old"').status == 200
    etag = header(get(files, "/docs/guide.txt"), "etag")
    assert etag is not None
    assert get(files, "/docs/guide.txt", range="bytes=0-1", if_range=etag).status == 206


def test_multiple_ranges(files: StaticFiles) -> None:
    r = get(files, "/docs/guide.txt", range="bytes=0-1, 10-12")
    assert r.status == 206
    ctype = header(r, "content-type")
    assert ctype is not None and ctype.startswith("multipart/byteranges; boundary=")
    boundary = ctype.split("=", 1)[1].encode()
    parts = body(r).split(b"--" + boundary)
    assert parts[0] == b"" and parts[-1] == b"--\r\n"
    assert b"content-range: bytes 0-1/20\r\n\r\n01\r\n" in parts[1]
    assert b"content-range: bytes 10-12/20\r\n\r\nabc\r\n" in parts[2]


def test_parse_range() -> None:
    assert parse_range("bytes=0-0", 10) == [(0, 0)]
    assert parse_range("bytes=-0", 10) == []
    assert parse_range("bytes=10-", 10) == []
    assert parse_range("bytes=0-1,", 10) is None
    assert parse_range("bytes=" + ",".join(["0-1"] * 17), 10) is None
    assert parse_range("bytes=-5", 0) == []


def test_over_http_with_httpx(start_server: StartServer) -> None:
    port, _ = start_server(StaticFiles(store()))
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        r = client.get("/docs/guide.txt")
        assert r.text == "0123456789abcdefghij"
        again = client.get("/docs/guide.txt", headers={"if-none-match": r.headers["etag"]})
        assert (again.status_code, again.content) == (304, b"")
        r = client.get("/big.bin", headers={"range": "bytes=1048570-1048580"})
        assert r.status_code == 206 and r.content == FILES["big.bin"][1048570:1048581]
        assert client.get("/big.bin").content == FILES["big.bin"]
        assert client.get("/docs", follow_redirects=True).text == "<h1>docs</h1>"
