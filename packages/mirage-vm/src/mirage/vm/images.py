"""What other hypervisor targets (mirage-xen's ``xen``, mirage-arm's boards) build
images with: the distribution packages, the initramfs writer, the guest network
(QEMU's side and the guest's arguments), the console streamer."""

from __future__ import annotations

from ._arch import ARCHES, RUNTIME_PACKAGES, Arch
from ._console import MARKER, ConsoleFilter, Seen, stream
from ._cpio import CpioWriter
from ._debs import cache_dir, fetch, kernel_package, unpack
from ._elf import has_pvh_entry, needed_libraries
from ._image import Image, build_initramfs, find_kernel
from ._image import _kernel_modules as kernel_modules
from ._net import (
    NIC,
    Netdev,
    parse_netdev,
    qemu_netdev_args,
    run_timeout,
    split_run_options,
    stack_kind,
)
from ._target import (
    DISK_MODULES,
    GUEST_GATEWAY,
    GUEST_IPV4,
    direct_boot,
    disk_args,
    disk_notes,
    guest_boot,
    host_files,
    kernel_command_line,
    network_notes,
    stream_console,
)
from ._target import _needs_network as needs_network

__all__ = [
    "ARCHES",
    "DISK_MODULES",
    "GUEST_GATEWAY",
    "GUEST_IPV4",
    "MARKER",
    "NIC",
    "RUNTIME_PACKAGES",
    "Seen",
    "Arch",
    "ConsoleFilter",
    "CpioWriter",
    "Image",
    "Netdev",
    "build_initramfs",
    "cache_dir",
    "direct_boot",
    "disk_args",
    "disk_notes",
    "fetch",
    "find_kernel",
    "guest_boot",
    "has_pvh_entry",
    "host_files",
    "kernel_command_line",
    "kernel_modules",
    "kernel_package",
    "needed_libraries",
    "needs_network",
    "network_notes",
    "parse_netdev",
    "qemu_netdev_args",
    "run_timeout",
    "split_run_options",
    "stack_kind",
    "stream",
    "stream_console",
    "unpack",
]
