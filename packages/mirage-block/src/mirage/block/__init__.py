"""mirage-block: block devices.

- :class:`FileBlock` (``file-block``): a file or block device of the host;
- :class:`MemoryBlock` (``memory-block``): zero-filled memory.

An artifact imports only the device it uses, so the names below are loaded on first
use and this module imports nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["FileBlock", "MemoryBlock"]

_WHERE = {"FileBlock": "file", "MemoryBlock": "memory"}

if TYPE_CHECKING:
    from .file import FileBlock
    from .memory import MemoryBlock


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        return version("mirage-block")
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'mirage.block' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"mirage.block.{module}"), name)
