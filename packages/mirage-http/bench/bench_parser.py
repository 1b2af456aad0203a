"""The protocol cores alone, no I/O: parse one request and emit a 1 KiB response,
then start the next cycle, as h11's own benchmark does. Ours beside h11, same run.

Usage: python bench_parser.py [seconds per core]   (default 2)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

REQUEST = (
    b"GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench/1.0\r\n"
    b"Accept: text/html\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\r\n"
)
BODY = b"x" * 1024


def ours() -> Callable[[], None]:
    from mirage.http.h1 import Connection, Data, EndOfMessage, Response, Role

    conn = Connection(Role.SERVER)
    headers = ((b"content-type", b"text/html"), (b"content-length", b"1024"))

    def cycle() -> None:
        conn.receive_data(REQUEST)
        conn.next_event()  # Request
        conn.next_event()  # EndOfMessage
        conn.send(Response(200, headers))
        conn.send(Data(BODY))
        conn.send(EndOfMessage())
        conn.start_next_cycle()

    return cycle


def h11_core() -> Callable[[], None]:
    import h11

    conn = h11.Connection(h11.SERVER)
    headers = [("content-type", "text/html"), ("content-length", "1024")]

    def cycle() -> None:
        conn.receive_data(REQUEST)
        conn.next_event()
        conn.next_event()
        conn.send(h11.Response(status_code=200, headers=headers))
        conn.send(h11.Data(data=BODY))
        conn.send(h11.EndOfMessage())
        conn.start_next_cycle()

    return cycle


def rate(make: Callable[[], Callable[[], None]], seconds: float) -> float:
    """Exchanges per CPU second (process time: steady on a shared host)."""
    cycle = make()
    n = 0
    start = time.process_time()
    while (elapsed := time.process_time() - start) < seconds:
        for _ in range(200):
            cycle()
        n += 200
    return n / elapsed


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    results = {"mirage": rate(ours, seconds)}
    try:
        results["h11"] = rate(h11_core, seconds)
    except ImportError:
        print("h11 is not installed: no peer")
    for name, value in results.items():
        print(f"  {name:8s} {value:10.0f} exchanges/s (parse a request, emit a 1 KiB response)")
    if "h11" in results:
        print(f"  mirage/h11: {results['mirage'] / results['h11']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
