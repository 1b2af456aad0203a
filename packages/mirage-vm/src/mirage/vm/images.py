"""What other hypervisor targets (mirage-xen's ``xen``, mirage-arm's boards) build
images with: the distribution packages, the initramfs writer, the console streamer."""

from __future__ import annotations

from ._arch import ARCHES, RUNTIME_PACKAGES, Arch
from ._debs import cache_dir, fetch, kernel_package, unpack
from ._elf import has_pvh_entry, needed_libraries
from ._image import Image, build_initramfs, find_kernel
from ._target import GUEST_GATEWAY, GUEST_IPV4, MARKER, stream_console
from ._target import _needs_network as needs_network

__all__ = [
    "ARCHES",
    "GUEST_GATEWAY",
    "GUEST_IPV4",
    "MARKER",
    "RUNTIME_PACKAGES",
    "Arch",
    "Image",
    "build_initramfs",
    "cache_dir",
    "fetch",
    "find_kernel",
    "has_pvh_entry",
    "kernel_package",
    "needed_libraries",
    "needs_network",
    "stream_console",
    "unpack",
]
