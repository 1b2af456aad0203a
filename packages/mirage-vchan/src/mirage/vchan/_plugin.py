"""mirage-vchan's plugin: vchan flows to and from another domain.

Declarations only: factories are import paths, so loading this module imports no
driver (mirage-xen's plugin module, whose runtime arguments it shares, is light too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mirage.core import Impl, Param, hookimpl
from mirage.xen._plugin import XEN_ARGS

if TYPE_CHECKING:
    from mirage.core import Registry

REQUIRES = ("mirage-vchan>=0.1,<1", "mirage-xen>=0.1,<1")

IMPLS = (
    Impl(
        name="vchan_server",
        provides="flow",
        factory="mirage.vchan.device:VchanServer",
        params=(
            Param("client", "int", doc="the domain allowed to connect"),
            Param("port", "str", "mirage", doc="the vchan port name"),
        ),
        runtime_args=XEN_ARGS,
        requires=REQUIRES,
        doc="a vchan offered to another domain (libxenvchan's layout)",
    ),
    Impl(
        name="vchan_client",
        provides="flow",
        factory="mirage.vchan.device:VchanClient",
        params=(
            Param("server", "int", doc="the domain offering the vchan"),
            Param("port", "str", "mirage", doc="the vchan port name"),
        ),
        runtime_args=XEN_ARGS,
        requires=REQUIRES,
        doc="a vchan to another domain (libxenvchan's layout)",
    ),
)


@hookimpl
def mirage_register_impls(registry: Registry) -> None:
    for impl in IMPLS:
        registry.add_impl(impl)
