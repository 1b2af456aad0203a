"""Core's own plugin: the module types of :mod:`mirage.core.types` and generic keys.

It comes in through the ``mirage`` entry-point group like every other plugin.
"""

from __future__ import annotations

from ._model import Key, ModuleType
from ._registry import Registry
from .hookspecs import hookimpl

_T = "mirage.core.types:"

MODULE_TYPES = (
    ModuleType("flow", _T + "Flow", "a reliable byte stream"),
    ModuleType("console", _T + "Console", "a text console (a flow with log)", ("flow",)),
    ModuleType("sleep", _T + "Sleep", "sleeping for a number of nanoseconds"),
    ModuleType("clock", _T + "Clock", "POSIX and monotonic time"),
    ModuleType("random", _T + "Random", "random bytes"),
    ModuleType("network", _T + "Network", "an Ethernet interface"),
    ModuleType("ethernet", _T + "Ethernet", "Ethernet framing"),
    ModuleType("arp", _T + "Arp", "IPv4 address resolution"),
    ModuleType("ip", _T + "Ip", "an IP layer (v4, v6 or both)"),
    ModuleType("udp", _T + "Udp", "UDP"),
    ModuleType("tcp", _T + "Tcp", "TCP connections as flows"),
    ModuleType("stack", _T + "Stack", "TCP, UDP and IP of one address-family set"),
    ModuleType("kv_ro", _T + "KvRo", "a read-only key-value store"),
    ModuleType("kv_rw", _T + "KvRw", "a read-write key-value store", ("kv_ro",)),
    ModuleType("block", _T + "Block", "a block device"),
    ModuleType("resolver", _T + "Resolver", "name resolution"),
)

TARGET_KEY = Key(
    "target",
    "str",
    None,
    "the target chosen with -t (set by configure; usable in if_impl/match_impl)",
)

KEYS = (
    TARGET_KEY,
    Key(
        "net",
        "str",
        None,
        "network stack: 'socket' (the host's sockets; 'host' is the same) or 'direct'"
        " (our TCP/IP stack); the target chooses when unset",
        ("socket", "host", "direct"),
    ),
)


@hookimpl
def mirage_register_module_types(registry: Registry) -> None:
    for module_type in MODULE_TYPES:
        registry.add_module_type(module_type)


@hookimpl
def mirage_register_keys(registry: Registry) -> None:
    for key in KEYS:
        registry.add_key(key)
