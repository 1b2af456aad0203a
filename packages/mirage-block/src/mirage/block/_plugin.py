"""mirage-block's plugin: its block devices.

Declarations only: factories are import paths, so loading this module imports no
device. Implementation names are global across plugins, hence ``-block``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mirage.core import Impl, Param, hookimpl

if TYPE_CHECKING:
    from mirage.core import Registry

REQUIRES = ("mirage-block>=0.1,<1",)

IMPLS = (
    Impl(
        name="file-block",
        provides="block",
        factory="mirage.block.file:FileBlock",
        params=(
            Param("path", "path", doc="the file or block device"),
            Param("sector_size", "int", 512, "bytes per sector"),
            Param("read_only", "bool", False, "refuse writes"),
            Param("size", "int", None, "create a missing file with this many bytes"),
        ),
        requires=REQUIRES,
        doc="a file or block device of the host",
    ),
    Impl(
        name="memory-block",
        provides="block",
        factory="mirage.block.memory:MemoryBlock",
        params=(
            Param("sectors", "int", doc="number of sectors"),
            Param("sector_size", "int", 512, "bytes per sector"),
        ),
        requires=REQUIRES,
        doc="zero-filled memory, lost when the process ends",
    ),
)


@hookimpl
def mirage_register_impls(registry: Registry) -> None:
    for impl in IMPLS:
        registry.add_impl(impl)
