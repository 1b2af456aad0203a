"""mirage-arm: ARM targets for mirage for Python.

- :mod:`mirage.arm._fdt`: a flattened device tree (DTB) reader and writer of our own.
- the ``xen-arm64`` target: the image as a dom0less guest of Xen on ARM64.
- the ``arm`` target and its board profiles (``--board``).

Names load on first use: ``mirage plugins`` imports this package to read the plugin's
declarations and should not pay for the codec.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._fdt import (
        FDT_MAGIC,
        DeviceTree,
        FdtError,
        FdtErrorCode,
        Layout,
        Node,
        Token,
        cells,
        pull_fdt,
        push_fdt,
        string,
        strings,
        u32,
        u64,
    )

__all__ = [
    "FDT_MAGIC",
    "DeviceTree",
    "FdtError",
    "FdtErrorCode",
    "Layout",
    "Node",
    "Token",
    "cells",
    "pull_fdt",
    "push_fdt",
    "string",
    "strings",
    "u32",
    "u64",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import _fdt

        return getattr(_fdt, name)
    raise AttributeError(f"module 'mirage.arm' has no attribute {name!r}")
