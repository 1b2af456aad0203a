"""mirage-kv: key-value stores.

- :class:`DirectoryKv` (``directory``, ``kv_rw``): a directory of the host;
- :class:`MemoryKv` (``memory``, ``kv_rw``): in memory, empty at start;
- :class:`CrunchKv` (``crunch``, ``kv_ro``): files embedded into the artifact at
  build time;
- :class:`TarKv` (``tar``, ``kv_ro``): the files of a tar archive.

An artifact imports only the store it uses, so the names below are loaded on first
use and this module imports nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["CrunchKv", "DirectoryKv", "MemoryKv", "TarFormatError", "TarKv"]

_WHERE = {
    "CrunchKv": "crunch",
    "DirectoryKv": "directory",
    "MemoryKv": "memory",
    "TarFormatError": "tar",
    "TarKv": "tar",
}

if TYPE_CHECKING:
    from .crunch import CrunchKv
    from .directory import DirectoryKv
    from .memory import MemoryKv
    from .tar import TarFormatError, TarKv


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        return version("mirage-kv")
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'mirage.kv' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"mirage.kv.{module}"), name)
