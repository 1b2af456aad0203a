"""The record layer: framing (TLSPlaintext), protection (TLSCiphertext) and padding.

Theory of operation: bytes from the transport go into :meth:`RecordLayer.feed`;
:meth:`RecordLayer.next_record` returns the next ``(content_type, fragment)`` with
protection removed, or None when no complete record is buffered. Outgoing data goes
through :meth:`RecordLayer.write`, which fragments it, protects it with the current
write key (if any) and returns the bytes for the transport. Keys change with
:meth:`set_read_key` / :meth:`set_write_key` (each resets its sequence number).

Limits (RFC 8446 5.1, 5.2, RFC 8449): a plaintext fragment is at most 2^14 bytes
(less if the peer sent record_size_limit); a TLSCiphertext at most 2^14 + 256. Longer
records are ``record_overflow``. A record that fails authentication is
``bad_record_mac`` and nothing of it reaches the caller.
"""

from __future__ import annotations

from ._constants import ContentType
from ._crypto import Aead, Aead12
from ._errors import BadRecordMac, DecodeError, RecordOverflow, UnexpectedMessage

__all__ = ["MAX_CIPHERTEXT", "MAX_PLAINTEXT", "RecordLayer", "pull_record_header"]

MAX_PLAINTEXT = 1 << 14
MAX_CIPHERTEXT = MAX_PLAINTEXT + 256
HEADER = 5
_VALID_TYPES = frozenset(int(t) for t in ContentType)


def pull_record_header(header: bytes) -> tuple[int, int, int]:
    """(content type, legacy version, length) of a 5-byte record header."""
    if len(header) != HEADER:
        raise DecodeError("a record header is 5 bytes")
    ctype = header[0]
    if ctype not in _VALID_TYPES:
        raise UnexpectedMessage(f"unknown record content type {ctype}")
    version = int.from_bytes(header[1:3], "big")
    if header[1] != 3:
        raise DecodeError(f"a record version {version:#06x} that is no TLS")
    length = int.from_bytes(header[3:5], "big")
    if length > MAX_CIPHERTEXT:
        raise RecordOverflow(f"a record of {length} bytes")
    return ctype, version, length


def encode_inner(content_type: int, data: bytes, padding: int) -> bytes:
    """TLSInnerPlaintext: content, type, ``padding`` zero bytes."""
    return data + bytes([content_type]) + bytes(padding)


def decode_inner(inner: bytes) -> tuple[int, bytes]:
    """(type, content) of a TLSInnerPlaintext; all-zero is ``unexpected_message``."""
    end = len(inner) - 1
    while end >= 0 and inner[end] == 0:  # padding is short: no copy of the content
        end -= 1
    if end < 0:
        raise UnexpectedMessage("a protected record without a content type")
    return inner[end], inner[:end]


class RecordLayer:
    __slots__ = (
        "_buf",
        "_read",
        "_write",
        "padding",
        "read_limit",
        "record_version",
        "skip_early_data",
        "write_limit",
    )

    def __init__(self) -> None:
        self._buf = bytearray()
        self._read: Aead | Aead12 | None = None
        self._write: Aead | Aead12 | None = None
        self.write_limit = MAX_PLAINTEXT  # content bytes per record we send
        self.read_limit = MAX_PLAINTEXT  # content bytes per record we accept
        self.padding = 0  # zero bytes added to each protected record we send
        self.record_version = 0x0301  # legacy_record_version of the first ClientHello
        self.skip_early_data = 0  # bytes of undecryptable records a server may drop

    # -- keys

    def set_read_key(self, aead: Aead | Aead12 | None) -> None:
        self._read = aead

    def set_write_key(self, aead: Aead | Aead12 | None) -> None:
        self._write = aead

    @property
    def read_protected(self) -> bool:
        return self._read is not None

    @property
    def write_protected(self) -> bool:
        return self._write is not None

    # -- reading

    def feed(self, data: bytes) -> None:
        self._buf += data

    def buffered(self) -> int:
        return len(self._buf)

    def next_record(self) -> tuple[int, bytes] | None:
        buf = self._buf
        if len(buf) < HEADER:
            return None
        ctype, _, length = pull_record_header(bytes(buf[:HEADER]))
        if len(buf) < HEADER + length:
            return None
        header = bytes(buf[:HEADER])
        fragment = bytes(buf[HEADER : HEADER + length])
        del buf[: HEADER + length]
        if self._read is None or ctype == ContentType.change_cipher_spec:
            if (
                ctype == ContentType.application_data
                and self._read is None
                and self.skip_early_data
            ):
                # 0-RTT records after a HelloRetryRequest: skipped (RFC 8446 4.2.10)
                self.skip_early_data = max(0, self.skip_early_data - length)
                if not self.skip_early_data:
                    raise UnexpectedMessage("too much early data")
                return self.next_record()
            if ctype == ContentType.application_data and self._read is None:
                raise UnexpectedMessage("application data before keys")
            if length > self.read_limit:
                raise RecordOverflow(f"a plaintext record of {length} bytes")
            return ctype, fragment
        if isinstance(self._read, Aead12):
            data = self._read.open(ctype, fragment)
            if len(data) > self.read_limit:
                raise RecordOverflow(f"a protected record of {len(data)} bytes")
            return ctype, data
        if ctype == ContentType.alert and length == 2:
            # A peer that fails before it has our keys alerts in plaintext.
            return ctype, fragment
        if ctype != ContentType.application_data:
            raise UnexpectedMessage(f"a record of type {ctype} after protection started")
        if self.skip_early_data:
            try:
                inner = self._read.open(fragment, header)
            except BadRecordMac:
                # RFC 8446 4.2.10: rejected 0-RTT data is skipped, up to a limit.
                self._read.seq -= 1
                self.skip_early_data = max(0, self.skip_early_data - length)
                if not self.skip_early_data:
                    raise
                return self.next_record()
            self.skip_early_data = 0
        else:
            inner = self._read.open(fragment, header)
        if len(inner) > self.read_limit + 1:
            raise RecordOverflow(f"a protected record of {len(inner)} bytes")
        return decode_inner(inner)

    # -- writing

    def write(self, content_type: int, data: bytes) -> bytes:
        """The records that carry ``data`` (at least one, even for empty data)."""
        out = bytearray()
        limit = self.write_limit
        pos = 0
        while True:
            chunk = data[pos : pos + limit]
            pos += limit
            out += self._record(content_type, chunk)
            if pos >= len(data):
                break
        return bytes(out)

    def _record(self, content_type: int, fragment: bytes) -> bytes:
        if self._write is None:
            header = bytes([content_type]) + self.record_version.to_bytes(2, "big")
            return header + len(fragment).to_bytes(2, "big") + fragment
        if isinstance(self._write, Aead12):
            body = self._write.seal(content_type, fragment)
            return bytes([content_type, 3, 3]) + len(body).to_bytes(2, "big") + body
        pad = min(self.padding, self.write_limit - len(fragment))
        inner = encode_inner(content_type, fragment, max(pad, 0))
        length = len(inner) + 16
        header = b"\x17\x03\x03" + length.to_bytes(2, "big")
        return header + self._write.seal(inner, header)
