"""mirage-xen: Xen's protocols in Python.

- :mod:`mirage.xen.xenstore`: the xenstore wire codec, server core, the
  ``mirage-xenstored`` daemon and clients.
- Grant tables and event channels (:class:`Domain`), with a simulated hypervisor in
  :mod:`mirage.xen.sim` and Linux's ``/dev/xen`` devices in :mod:`mirage.xen.linux`.
- :mod:`mirage.xen.ring`: the shared I/O ring of Xen's ``ring.h``.
- :mod:`mirage.xen.xenbus`, :mod:`mirage.xen.console`, :mod:`mirage.xen.blkif`,
  :mod:`mirage.xen.netif` (:mod:`~mirage.xen.netfront`, :mod:`~mirage.xen.netback`):
  split drivers over them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._hypervisor import (
        PAGE_SIZE,
        Domain,
        EventChannels,
        Grant,
        GrantTable,
        HypervisorError,
        Mapping,
    )
    from .xenstore import Perm

__all__ = [
    "Domain",
    "EventChannels",
    "Grant",
    "GrantTable",
    "HypervisorError",
    "Mapping",
    "PAGE_SIZE",
    "Perm",
]

# Imported on first use, so that the plugin module (mirage.xen._plugin) stays light.
_WHERE = dict.fromkeys(__all__, "._hypervisor") | {"Perm": ".xenstore"}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(where, __name__), name)
