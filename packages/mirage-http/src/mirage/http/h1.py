"""The sans-IO HTTP/1.1 core: events in, bytes out, no sockets and no clocks.

conn = Connection(Role.SERVER)
conn.receive_data(b"GET / HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n")
request = conn.next_event()        # Request(method=b"GET", target=b"/", ...)
conn.next_event()                  # EndOfMessage()
wire = conn.send(Response(200, ((b"content-length", b"2"),)))
wire += conn.send(Data(b"hi")) + conn.send(EndOfMessage())
conn.start_next_cycle()
"""

from __future__ import annotations

from mirage.http._connection import Connection, Role, State
from mirage.http._errors import HttpError, LocalProtocolError, RemoteProtocolError
from mirage.http._events import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    Headers,
    InformationalResponse,
    Request,
    Response,
    Sentinel,
    get_header,
    get_headers,
)
from mirage.http._limits import Limits

__all__ = [
    "NEED_DATA",
    "PAUSED",
    "Connection",
    "ConnectionClosed",
    "Data",
    "EndOfMessage",
    "Event",
    "Headers",
    "HttpError",
    "InformationalResponse",
    "Limits",
    "LocalProtocolError",
    "RemoteProtocolError",
    "Request",
    "Response",
    "Role",
    "Sentinel",
    "State",
    "get_header",
    "get_headers",
]
