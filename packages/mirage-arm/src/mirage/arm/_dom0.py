"""The driver domain: a dom0 that only gives the dom0less guest its network.

Xen on ARM's PV network needs a backend domain with xenstore. The guest stays a
dom0less guest (Xen builds it at boot from the device tree, marked ``xen,enhanced``);
dom0 boots beside it with the same Debian kernel and a ramdisk made of the guest's own
(for its Python and libc) with a second cpio archive appended: Debian's Xen tools
(``xenstored``, ``xen-init-dom0``, ``init-dom0less``, ``xenstore-write``/``-chmod``)
with the shared libraries their ``DT_NEEDED`` entries name, the kernel modules for the
Xen devices, netback, the bridge and the NIC (dependencies from the modules' own
metadata), and :mod:`mirage.arm._dom0_init` as ``/init``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

from mirage.core import MirageError
from mirage.vm.images import CpioWriter, kernel_modules, needed_libraries

__all__ = [
    "DOM0_MODULES",
    "DOM0_PACKAGES",
    "GUEST_MAC",
    "GUEST_NIC_MODULES",
    "Dom0",
    "driver_domain",
]

DOM0_PACKAGES = (
    "xen-utils-4.17",
    "libxenmisc4.17",
    "xenstore-utils",
    "libxenstore4",
    "libxencall1",
    "libxendevicemodel1",
    "libxenevtchn1",
    "libxenforeignmemory1",
    "libxengnttab1",
    "libxenhypfs1",
    "libxentoollog1",
    "libxentoolcore1",
    "libyajl2",
    "libfdt1",
    "libuuid1",
)
"""Debian's Xen userspace for dom0, and the libraries it loads."""

TOOLS = (
    "usr/lib/xen-4.17/bin/xenstored",
    "usr/lib/xen-4.17/bin/xen-init-dom0",
    "usr/lib/xen-4.17/bin/init-dom0less",
    "usr/bin/xenstore-write",
    "usr/bin/xenstore-chmod",
)
DOM0_MODULES = (
    "xen-evtchn",
    "xen-gntdev",
    "xen-gntalloc",
    "xen-privcmd",
    "xenfs",
    "xen-netback",
    "bridge",
    "virtio_mmio",
    "virtio_net",
)
"""What dom0's kernel needs beyond what is built in: the devices the Xen tools open,
the backend, the bridge, and QEMU's NIC (``virtio-net-device`` on the virtio-mmio
bus)."""

GUEST_NIC_MODULES = ("xen-netfront",)
GUEST_MAC = "00:16:3e:00:00:01"  # Xen's OUI
GUEST_DOMAIN = 1
UPLINK = "eth0"


@dataclass(frozen=True, slots=True)
class Dom0:
    """Where the loader puts dom0's kernel and ramdisk, and its share of memory."""

    kernel_size: int
    ramdisk_size: int
    kernel_addr: int
    ramdisk_addr: int
    memory_mib: int = 384
    bootargs: str = "console=hvc0 quiet"


def _libraries(root: Path, triplet: str, binaries: list[bytes]) -> dict[str, Path]:
    dirs = [root / "lib" / triplet, root / "usr" / "lib" / triplet]
    found: dict[str, Path] = {}
    todo = list(binaries)
    while todo:
        for soname in needed_libraries(todo.pop()):
            if soname in found:
                continue
            path = next((d / soname for d in dirs if (d / soname).exists()), None)
            if path is None:
                raise MirageError(
                    f"dom0's Xen tools need {soname}, which none of Debian's packages"
                    f" fetched for it holds ({', '.join(DOM0_PACKAGES)})"
                )
            found[soname] = path.resolve()
            todo.append(found[soname].read_bytes())
    return found


def driver_domain(
    root: Path,
    kernel_version: str,
    triplet: str,
    base_initrd: bytes,
    *,
    finit_module: int,
    reboot: int,
    trace: bool = False,
) -> bytes:
    """dom0's ramdisk: ``base_initrd`` (the guest's, for its Python and libc) with
    the Xen tools, their libraries, dom0's kernel modules and its ``/init`` appended."""
    missing = [tool for tool in TOOLS if not (root / tool).is_file()]
    if missing:
        raise MirageError(
            f"the Xen userspace packages hold no {', '.join(missing)}",
            hint=f"they come from Debian's {DOM0_PACKAGES[0]} for arm64",
        )
    binaries = [(root / tool).read_bytes() for tool in TOOLS]
    libraries = _libraries(root, triplet, binaries)
    # Modules the kernel has built in are not files: kernel_modules skips them.
    modules = kernel_modules(root, kernel_version, DOM0_MODULES)
    config = {
        "modules": [f"/lib/modules/dom0/{m.name}" for m in modules],
        "finit_module": finit_module,
        "reboot": reboot,
        "guest": GUEST_DOMAIN,
        "mac": GUEST_MAC,
        "uplink": UPLINK,
        "trace": trace,
    }
    init = (Path(__file__).parent / "_dom0_init.py").read_bytes()

    buf = io.BytesIO()
    cpio = CpioWriter(buf)
    made: set[str] = set()

    def file(path: str, data: bytes, mode: int) -> None:
        parts = path.split("/")
        for i in range(1, len(parts)):
            folder = "/".join(parts[:i])
            if folder not in made:
                made.add(folder)
                cpio.directory(folder)
        cpio.file(path, data, mode)

    for tool, data in zip(TOOLS, binaries, strict=True):
        file(tool, data, 0o755)
    for soname, path in sorted(libraries.items()):
        file(f"lib/{triplet}/{soname}", path.read_bytes(), 0o755)
    for module in modules:
        file(f"lib/modules/dom0/{module.name}", module.read_bytes(), 0o644)
    file("etc/mirage-dom0.json", json.dumps(config, indent=1).encode(), 0o644)
    file("init", b"#!/usr/bin/python3.11 -IS\n" + init, 0o755)
    cpio.close()
    return base_initrd + buf.getvalue()
