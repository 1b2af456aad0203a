"""The HTTP/1.1 connection state machine, sans I/O.

Theory of operation. A :class:`Connection` plays one role (``CLIENT`` or ``SERVER``)
and tracks two states: ``our_state`` (what we may send next) and ``their_state``
(what we expect to receive). Each side goes

    IDLE -> SEND_BODY -> DONE        (or MUST_CLOSE when the connection ends after)

and a server's own side passes through SEND_RESPONSE between receiving a request head
and sending its response head (it may send 1xx answers there). Bytes come in through
:meth:`receive_data` (``b""`` is the peer's end of stream) and leave as events from
:meth:`next_event`; :meth:`send` turns our events into bytes for the caller to write.
When both sides are DONE, :meth:`start_next_cycle` returns them to IDLE for the next
request on the same connection; until then a server's :meth:`next_event` answers
``PAUSED``, which is how pipelined requests wait their turn. A server may also send
an error response with no request to answer (one it could not parse, or a 408 on an
idle connection); the connection then ends after it.

The transitions are the table ``_SEND`` below; an event that is not in it for the
current state raises :class:`LocalProtocolError`. A decode error moves
``their_state`` to ERROR for good and raises :class:`RemoteProtocolError`, whose
``status`` is the answer a server should give before it closes.
"""

from __future__ import annotations

import enum

from mirage.http._errors import LocalProtocolError, RemoteProtocolError
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
)
from mirage.http._limits import Limits
from mirage.http._parse import (
    BodyReader,
    ChunkedReader,
    CloseDelimitedReader,
    LengthReader,
    find_head,
    parse_content_length,
    parse_request_head,
    parse_response_head,
    parse_transfer_encoding,
)
from mirage.http._serialise import (
    REASONS,
    BodyWriter,
    ChunkedWriter,
    CloseDelimitedWriter,
    LengthWriter,
    NoBodyWriter,
    check_headers,
    is_token,
    scan_headers,
    write_fields,
)

__all__ = ["Connection", "Role", "State"]


class Role(enum.Enum):
    CLIENT = "client"
    SERVER = "server"


class State(enum.Enum):
    IDLE = "IDLE"
    SEND_RESPONSE = "SEND_RESPONSE"
    SEND_BODY = "SEND_BODY"
    DONE = "DONE"
    MUST_CLOSE = "MUST_CLOSE"
    CLOSED = "CLOSED"
    ERROR = "ERROR"


IDLE, SEND_RESPONSE, SEND_BODY = State.IDLE, State.SEND_RESPONSE, State.SEND_BODY
DONE, MUST_CLOSE, CLOSED, ERROR = State.DONE, State.MUST_CLOSE, State.CLOSED, State.ERROR

# role -> event type -> (the state we must be in, the state we go to); EndOfMessage
# goes to MUST_CLOSE instead of DONE when the connection will not be reused.
_SEND: dict[Role, dict[type, tuple[State, State]]] = {
    Role.CLIENT: {
        Request: (IDLE, SEND_BODY),
        Data: (SEND_BODY, SEND_BODY),
        EndOfMessage: (SEND_BODY, DONE),
    },
    Role.SERVER: {
        InformationalResponse: (SEND_RESPONSE, SEND_RESPONSE),
        Response: (SEND_RESPONSE, SEND_BODY),
        Data: (SEND_BODY, SEND_BODY),
        EndOfMessage: (SEND_BODY, DONE),
    },
}

_FRAMING = frozenset({b"content-length", b"transfer-encoding", b"expect", b"connection"})
_EOM = EndOfMessage()
_NO_BODY = LengthReader(0)  # done from the start, and stateless: shared
_NO_BODY_STATUS = frozenset({204, 304})
_CLOSE = b"close"


def _has_token(headers: Headers, name: bytes, token: bytes) -> bool:
    for n, v in headers:
        if n == name and any(t.strip(b" \t").lower() == token for t in v.split(b",")):
            return True
    return False


def _without(headers: Headers, name: bytes) -> Headers:
    return tuple(h for h in headers if h[0] != name)


class Connection:
    """One HTTP/1.1 connection seen from ``role``; see the module's docstring."""

    def __init__(self, role: Role, limits: Limits | None = None) -> None:
        self.role = role
        self._send_rules = _SEND[role]
        self.limits = limits if limits is not None else Limits()
        self.our_state = IDLE
        self.their_state = IDLE
        self._buf = bytearray()
        self._eof = False
        self._error: RemoteProtocolError | None = None
        self._reader: BodyReader | None = None
        self._writer: BodyWriter | None = None
        self._keep_alive = True
        self._request_method: bytes | None = None
        self._request_version = b"1.1"
        self._expect_continue = False

    # -- input ---------------------------------------------------------------

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """Bytes received but not yet parsed, and whether the peer has closed."""
        return bytes(self._buf), self._eof

    @property
    def they_are_waiting_for_100_continue(self) -> bool:
        return self._expect_continue

    @property
    def keep_alive(self) -> bool:
        """Whether the connection may carry another exchange after this one."""
        return self._keep_alive

    def receive_data(self, data: bytes) -> None:
        if data:
            if self._eof:
                raise LocalProtocolError("data received after end of stream")
            self._buf += data
        else:
            self._eof = True

    def next_event(self) -> Event | Sentinel:
        if self._error is not None:
            raise self._error
        try:
            return self._next_event()
        except RemoteProtocolError as exc:
            self._error = exc
            self.their_state = ERROR
            self._keep_alive = False
            self._expect_continue = False
            raise

    def _next_event(self) -> Event | Sentinel:
        state = self.their_state
        if state is SEND_BODY:
            reader = self._reader
            assert reader is not None
            if not reader.done:
                data = reader.read(self._buf)
                if data is None:
                    if not self._eof:
                        return NEED_DATA
                    reader.eof()
                elif data:
                    self._expect_continue = False
                    return Data(data)
            if reader.done:
                self.their_state = DONE if self._keep_alive else MUST_CLOSE
                self._reader = None
                return EndOfMessage(reader.trailers) if reader.trailers else _EOM
            return NEED_DATA
        if state is IDLE:
            if self.role is Role.SERVER:
                return self._read_request()
            return self._read_response()
        if state is CLOSED:
            return ConnectionClosed()
        # DONE or MUST_CLOSE: wait for start_next_cycle (or the end).
        if self._eof and not self._buf:
            self.their_state = CLOSED
            return ConnectionClosed()
        return PAUSED

    def _read_head(self, is_request: bool) -> bytes | Sentinel | ConnectionClosed:
        buf = self._buf
        if is_request:
            while buf[:2] == b"\r\n":  # empty lines before a request line are ignored
                del buf[:2]
        if not buf and self._eof:
            self.their_state = CLOSED
            return ConnectionClosed()
        n = find_head(buf, self.limits, is_request=is_request)
        if n < 0:
            if self._eof:
                raise RemoteProtocolError("connection closed in the middle of a head")
            return NEED_DATA
        head = bytes(buf[:n])
        del buf[:n]
        return head

    def _read_request(self) -> Event | Sentinel:
        buf = self._buf
        # Fast path: a whole head at the start of the buffer.
        end = buf.find(b"\r\n\r\n")
        if end > 0 and buf[:2] != b"\r\n":
            head = bytes(buf[: end + 4])
            del buf[: end + 4]
        else:
            found = self._read_head(True)
            if not isinstance(found, bytes):
                return found
            head = found
        request = parse_request_head(head, self.limits)
        headers = [h for h in request.headers if h[0] in _FRAMING]
        if not headers:  # no body, no expectation, no connection options
            self._reader = _NO_BODY
            self._request_method = request.method
            self._request_version = request.http_version
            if request.http_version == b"1.0":
                self._keep_alive = False
            self.their_state = SEND_BODY
            self.our_state = SEND_RESPONSE
            return request
        chunked = parse_transfer_encoding(headers)
        length = parse_content_length(headers)
        if chunked:
            if length is not None:
                raise RemoteProtocolError("both Content-Length and Transfer-Encoding")
            if request.http_version == b"1.0":
                raise RemoteProtocolError("Transfer-Encoding in an HTTP/1.0 request")
            self._reader = ChunkedReader(self.limits)
        else:
            length = length or 0
            limit = self.limits.max_body_size
            if limit is not None and length > limit:
                raise RemoteProtocolError("request body too large", 413)
            self._reader = LengthReader(length) if length else _NO_BODY
        expect = [v for n, v in headers if n == b"expect"]
        if expect and request.http_version == b"1.1":
            if [v.lower() for v in expect] != [b"100-continue"]:
                raise RemoteProtocolError("unsupported expectation", 417)
            self._expect_continue = not self._reader.done
        self._request_method = request.method
        self._request_version = request.http_version
        if request.http_version == b"1.0" or _has_token(tuple(headers), b"connection", _CLOSE):
            self._keep_alive = False
        self.their_state = SEND_BODY
        self.our_state = SEND_RESPONSE
        return request

    def _read_response(self) -> Event | Sentinel:
        if self.our_state is IDLE:
            if self._eof and not self._buf:
                self.their_state = CLOSED
                return ConnectionClosed()
            return NEED_DATA  # nothing asked yet
        head = self._read_head(False)
        if not isinstance(head, bytes):
            if isinstance(head, ConnectionClosed):
                raise RemoteProtocolError("connection closed before a response")
            return head
        response = parse_response_head(head, self.limits)
        status = response.status
        if status < 200:
            if status == 101:
                raise RemoteProtocolError("protocol switching is not supported")
            return InformationalResponse(
                status, response.headers, response.reason, response.http_version
            )
        headers = response.headers
        if response.http_version == b"1.0" or _has_token(headers, b"connection", _CLOSE):
            self._keep_alive = False
        reader: BodyReader
        if self._request_method == b"HEAD" or status in _NO_BODY_STATUS:
            reader = LengthReader(0)
        elif self._request_method == b"CONNECT" and status < 300:
            raise RemoteProtocolError("CONNECT tunnels are not supported")
        else:
            try:
                chunked = parse_transfer_encoding(headers)
            except RemoteProtocolError:
                chunked = False  # another coding: the body runs to the close
            length = parse_content_length(headers)
            if chunked:
                reader = ChunkedReader(self.limits)
            elif chunked is False:
                reader = CloseDelimitedReader()
                self._keep_alive = False
            elif length is not None:
                limit = self.limits.max_body_size
                if limit is not None and length > limit:
                    raise RemoteProtocolError("response body too large", 413)
                reader = LengthReader(length)
            else:
                reader = CloseDelimitedReader()
                self._keep_alive = False
        self._reader = reader
        self.their_state = SEND_BODY
        return response

    # -- output --------------------------------------------------------------

    def send(self, event: Event) -> bytes:
        """The bytes that carry ``event``; raises :class:`LocalProtocolError` if it
        may not be sent now."""
        kind = type(event)
        if kind is Data:
            if self.our_state is not SEND_BODY or self._writer is None:
                raise LocalProtocolError(f"cannot send Data in state {self.our_state.value}")
            return self._writer.write(event.data)  # type: ignore[union-attr]
        if kind is ConnectionClosed:
            self.our_state = CLOSED
            return b""
        our = self.our_state
        unasked = False
        if (
            isinstance(event, Response)
            and our is IDLE
            and self.role is Role.SERVER
            and self.their_state in (ERROR, IDLE)
            and event.status >= 400
        ):
            # Answering a request we could not parse, or with an error one that never
            # came (a 408 before closing an idle connection); the connection ends.
            our = SEND_RESPONSE
            unasked = True
        rule = self._send_rules.get(kind)
        if rule is None or rule[0] is not our:
            raise LocalProtocolError(
                f"cannot send {kind.__name__} in state {our.value} as {self.role.value}"
            )
        nxt = rule[1]
        if isinstance(event, EndOfMessage):
            assert self._writer is not None
            out = self._writer.finish(event.trailers)
            self._writer = None
            if not self._keep_alive or self.their_state is CLOSED:
                nxt = MUST_CLOSE
        elif isinstance(event, Response):
            out = self._unasked_response(event) if unasked else self._response(event)
        elif isinstance(event, InformationalResponse):
            out = self._informational(event)
        else:
            assert isinstance(event, Request)
            out = self._request(event)
        self.our_state = nxt
        return out

    def _informational(self, event: InformationalResponse) -> bytes:
        if not 100 <= event.status < 200 or event.status == 101:
            raise LocalProtocolError("informational responses are 1xx (but not 101)")
        self._expect_continue = False
        headers = check_headers(event.headers)
        reason = event.reason or REASONS.get(event.status, b"")
        return b"HTTP/1.1 %d %s\r\n%s\r\n" % (event.status, reason, write_fields(headers))

    def _unasked_response(self, event: Response) -> bytes:
        saved = self._keep_alive, self._request_method
        self._keep_alive, self._request_method = False, None
        try:
            out = self._response(event)
        except LocalProtocolError:
            self._keep_alive, self._request_method = saved
            raise
        if self.their_state is IDLE:
            self.their_state = MUST_CLOSE  # read no request after this answer
        return out

    def _response(self, event: Response) -> bytes:
        status = event.status
        if not 200 <= status < 1000:
            raise LocalProtocolError("a final response has a status of 200 to 999")
        headers, length, chunked, close = scan_headers(event.headers)
        self._expect_continue = False
        if chunked and length is not None:  # Transfer-Encoding wins; never send both
            headers = _without(headers, b"content-length")
            length = None
        if chunked and self._request_version == b"1.0":  # it cannot read chunks
            headers = _without(headers, b"transfer-encoding")
            chunked = False
        extra: list[tuple[bytes, bytes]] = []
        writer: BodyWriter
        if chunked:
            writer = ChunkedWriter()
        elif length is not None:
            writer = LengthWriter(int(length))
        elif self._request_version == b"1.1" and status not in _NO_BODY_STATUS:
            extra.append((b"transfer-encoding", b"chunked"))
            writer = ChunkedWriter()
        else:
            writer = CloseDelimitedWriter()
            if status not in _NO_BODY_STATUS:
                self._keep_alive = False
        if self._request_method == b"HEAD" or status in _NO_BODY_STATUS:
            writer = NoBodyWriter()
        if self.their_state is ERROR:
            self._keep_alive = False
        if close:
            self._keep_alive = False
        elif not self._keep_alive:
            extra.append((b"connection", _CLOSE))
        if not self._keep_alive and self.their_state is DONE:
            self.their_state = MUST_CLOSE  # their request was the last
        self._writer = writer
        reason = event.reason or REASONS.get(status, b"")
        return b"HTTP/1.1 %d %s\r\n%s%s\r\n" % (
            status,
            reason,
            write_fields(headers),
            write_fields(tuple(extra)),
        )

    def _request(self, event: Request) -> bytes:
        headers, length, chunked, close = scan_headers(event.headers)
        if sum(n == b"host" for n, _ in headers) != 1:
            raise LocalProtocolError("an HTTP/1.1 request needs exactly one Host header")
        if not is_token(event.method):
            raise LocalProtocolError("invalid request method")
        if b" " in event.target or b"\r" in event.target or b"\n" in event.target:
            raise LocalProtocolError("invalid request target")
        if chunked and length is not None:  # Transfer-Encoding wins; never send both
            headers = _without(headers, b"content-length")
        writer: BodyWriter = ChunkedWriter() if chunked else LengthWriter(int(length or 0))
        if close:
            self._keep_alive = False
        self._writer = writer
        self._request_method = event.method
        return b"%s %s HTTP/1.1\r\n%s\r\n" % (event.method, event.target, write_fields(headers))

    # -- cycles --------------------------------------------------------------

    def start_next_cycle(self) -> None:
        """Both messages are complete and the connection stays open: go back to IDLE."""
        if self.our_state is not DONE or self.their_state is not DONE:
            raise LocalProtocolError(
                f"not ready for another exchange ({self.our_state.value}, {self.their_state.value})"
            )
        self.our_state = IDLE
        self.their_state = IDLE
        self._request_method = None
        self._request_version = b"1.1"
        self._expect_continue = False
