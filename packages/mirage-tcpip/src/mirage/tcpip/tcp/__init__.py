"""TCP: the segment codec, RFC 6528 ISNs and the sans-IO connection state machine."""

from __future__ import annotations

from ._conn import Connection, State, TcpConfig, unwrap
from ._cookies import SynCookies
from ._host import TcpHost
from ._isn import IsnGenerator
from ._segment import ACK, FIN, PROTO_TCP, PSH, RST, SYN, URG, TcpSegment

__all__ = [
    "ACK",
    "FIN",
    "PROTO_TCP",
    "PSH",
    "RST",
    "SYN",
    "URG",
    "Connection",
    "IsnGenerator",
    "State",
    "SynCookies",
    "TcpConfig",
    "TcpHost",
    "TcpSegment",
    "unwrap",
]
