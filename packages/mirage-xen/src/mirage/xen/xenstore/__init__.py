"""xenstore: wire codec, server core, ``mirage-xenstored`` daemon and clients."""

from __future__ import annotations

from ._client import (
    AsyncClient,
    AsyncTransaction,
    Client,
    ClientCore,
    Transaction,
    WatchEvent,
    default_socket,
)
from ._daemon import XenstoreDaemon
from ._ring import RingConnection, RingTransport, share_ring
from ._server import Node, Quota, XenstoreServer
from ._wire import (
    ERROR_NAMES,
    PAYLOAD_MAX,
    Op,
    Packet,
    Perm,
    XsDecodeError,
    XsError,
    join_args,
    pull_packet,
    push_packet,
    split_args,
    valid_path,
)

__all__ = [
    "AsyncClient",
    "AsyncTransaction",
    "Client",
    "ClientCore",
    "ERROR_NAMES",
    "Node",
    "Op",
    "PAYLOAD_MAX",
    "Packet",
    "Perm",
    "Quota",
    "RingConnection",
    "RingTransport",
    "Transaction",
    "WatchEvent",
    "XenstoreDaemon",
    "XenstoreServer",
    "XsDecodeError",
    "XsError",
    "default_socket",
    "join_args",
    "pull_packet",
    "push_packet",
    "share_ring",
    "split_args",
    "valid_path",
]
