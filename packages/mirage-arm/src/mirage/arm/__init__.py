"""mirage-arm: ARM targets for mirage for Python.

- :mod:`mirage.arm._fdt`: a flattened device tree (DTB) reader and writer of our own.
- the ``xen-arm64`` target: the image as a dom0less guest of Xen on ARM64.
- the ``arm`` target and its board profiles (``--board``).
"""

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
