"""mirage-vchan: inter-domain byte streams, laid out as Xen's libxenvchan lays them out.

:class:`VchanFlow` is a mirage ``Flow``: ``await VchanFlow.listen(domain, xs, client,
port)`` on the server domain, ``await VchanFlow.connect(domain, xs, server, port)`` on
the client domain.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._endpoint import Endpoint, VchanError
    from ._flow import VchanFlow, vchan_path
    from ._layout import Live, Notify, RingPlan, VchanLayoutError, check_orders, plan_rings

__all__ = [
    "Endpoint",
    "Live",
    "Notify",
    "RingPlan",
    "VchanError",
    "VchanFlow",
    "VchanLayoutError",
    "check_orders",
    "plan_rings",
    "vchan_path",
]

# Imported on first use, so that the plugin module (mirage.vchan._plugin) stays light.
_WHERE = {
    "Endpoint": "._endpoint",
    "VchanError": "._endpoint",
    "VchanFlow": "._flow",
    "vchan_path": "._flow",
} | dict.fromkeys(
    ["Live", "Notify", "RingPlan", "VchanLayoutError", "check_orders", "plan_rings"], "._layout"
)


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(where, __name__), name)
