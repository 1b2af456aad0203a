"""The driver domain: a dom0 that only gives the dom0less guest its network.

Xen on ARM's PV network needs a backend domain with xenstore. The guest stays a
dom0less guest (Xen builds it at boot from the device tree, marked ``xen,enhanced``);
dom0 boots beside it with the same Debian kernel and a ramdisk made of the guest's own
(for its Python and libc) with a second cpio archive appended: Debian's Xen tools
(``xen-init-dom0``, ``init-dom0less``, ``xenstore-write``/``-chmod``)
with the shared libraries their ``DT_NEEDED`` entries name, the kernel modules for the
Xen devices, netback, the bridge and the NIC (dependencies from the modules' own
metadata), and :mod:`mirage.arm._dom0_init` as ``/init``.

The xenstore daemon is mirage-xen's by default (``--arm-xenstored mirage``): its
package goes in as bytecode under ``/usr/lib/mirage-xenstored`` with the ``/dev/xen``
ioctl declarations as cffi's out-of-line ABI module (``mirage.xen._linux_ffi``: no C
parsing at boot, so neither pycparser nor cffi's Python package goes in) and
``_cffi_backend`` from the guest architecture's cffi wheel, with the standard library
modules a trace of its imports on the build host finds (the runtime's own files) and
``libatomic``; it then serves dom0's kernel, Debian's tools and the guest.
``--arm-xenstored xen`` runs Debian's ``xenstored`` instead.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mirage.core import MirageError
from mirage.vm.images import (
    PY,
    Arch,
    CpioWriter,
    compile_pyc,
    foreign_wheel,
    kernel_modules,
    library_closure,
    stdlib_for,
)

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
    "libatomic1",  # cffi's atomics in mirage-xen's /dev/xen code
)
"""Debian's Xen userspace for dom0, and the libraries it loads."""

XEN_XENSTORED = "usr/lib/xen-4.17/bin/xenstored"
TOOLS = (
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

XENSTORED_HOME = "usr/lib/mirage-xenstored"
XENSTORED_CHOICES = ("mirage", "xen")
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


def _libraries(root: Path, triplet: str, binaries: list[bytes]) -> dict[str, Path] | str:
    """The libraries ``binaries`` need, transitively, or the name of a missing one."""
    return library_closure(binaries, [root / "lib" / triplet, root / "usr" / "lib" / triplet])


_XENSTORED_TRACE = "import mirage.xen.xenstore._daemon\nimport mirage.xen.linux\n"


def _package_folder(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise MirageError(f"the build's environment has no {name} package", hint="pip install cffi")
    return Path(next(iter(spec.submodule_search_locations)))


def _package_tree(folder: Path, arc: str) -> list[tuple[str, bytes, int]]:
    """A pure-Python package as sourceless bytecode under ``XENSTORED_HOME/arc``."""
    files = []
    for path in sorted(folder.rglob("*.py")):
        rel = f"{arc}/{path.relative_to(folder).as_posix()}"
        home = f"{XENSTORED_HOME}/{rel}"
        files.append((home[:-3] + ".pyc", compile_pyc(path.read_bytes(), "/" + home), 0o644))
    return files


def xenstored_files(root: Path, arch: Arch) -> tuple[list[tuple[str, bytes, int]], list[bytes]]:
    """mirage-xen's xenstored for dom0: its files, and the binaries among them (whose
    libraries the caller adds)."""
    import mirage.xen
    from mirage.xen._linux_abi import out_of_line_source

    xen = Path(mirage.xen.__file__).parent
    ffi_source = out_of_line_source()
    files = _package_tree(xen, "mirage/xen")
    ffi_home = f"{XENSTORED_HOME}/mirage/xen/_linux_ffi"
    files.append((ffi_home + ".pyc", compile_pyc(ffi_source, "/" + ffi_home + ".py"), 0o644))
    wheel = foreign_wheel("cffi", importlib.metadata.version("cffi"), arch)
    binaries: list[bytes] = []
    for path in sorted(p for p in wheel.rglob("*") if p.is_file()):
        rel = path.relative_to(wheel).as_posix()
        # _cffi_backend, and the libraries a wheel may bundle beside it (cffi.libs).
        if rel.endswith(".so") or ".so." in rel:
            data = path.read_bytes()
            files.append((f"{XENSTORED_HOME}/{rel}", data, 0o755))
            binaries.append(data)
    if not any(Path(f).name.startswith("_cffi_backend") for f, _, _ in files):
        raise MirageError(f"the cffi wheel for {arch.name} holds no _cffi_backend")
    # The standard library it imports, from the runtime: a trace on the build host,
    # of the package as the image has it (with the out-of-line module).
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp)
        shutil.copytree(xen, staged / "mirage" / "xen", ignore=shutil.ignore_patterns("*.pyc"))
        (staged / "mirage" / "xen" / "_linux_ffi.py").write_bytes(ffi_source)
        script = staged / "trace.py"
        script.write_text(_XENSTORED_TRACE)
        site = _package_folder("cffi").parent  # _cffi_backend
        stdlib = stdlib_for(root, arch, [script], [staged, site])
    for path in stdlib.values():
        rel = path.relative_to(root).as_posix()
        if path.suffix == ".py":
            files.append((rel[:-3] + ".pyc", compile_pyc(path.read_bytes(), "/" + rel), 0o644))
        else:
            data = path.read_bytes()
            if isinstance(_libraries(root, arch.triplet, [data]), str):
                continue  # optional to what imports it (asyncio's ssl), as in the guest
            files.append((rel, data, 0o755))
            binaries.append(data)
    atomic = next(iter(sorted((root / "usr" / "lib" / arch.triplet).glob("libatomic.so.1*"))), None)
    if atomic is None:
        raise MirageError("the runtime holds no libatomic.so.1 (Debian's libatomic1)")
    data = atomic.read_bytes()
    files.append((f"lib/{arch.triplet}/libatomic.so.1", data, 0o755))
    binaries.append(data)
    return files, binaries


def driver_domain(
    root: Path,
    kernel_version: str,
    arch: Arch,
    base_initrd: bytes,
    *,
    xenstored: str = "mirage",
    trace: bool = False,
) -> bytes:
    """dom0's ramdisk: ``base_initrd`` (the guest's, for its Python and libc) with
    the Xen tools, their libraries, dom0's kernel modules, the xenstore daemon
    (``xenstored``: ``mirage`` or ``xen``) and its ``/init`` appended."""
    if xenstored not in XENSTORED_CHOICES:
        raise MirageError(
            f"no xenstored {xenstored!r}",
            where="--arm-xenstored",
            hint=f"choose one of: {', '.join(XENSTORED_CHOICES)}",
        )
    triplet = arch.triplet
    tools = [*TOOLS, *([XEN_XENSTORED] if xenstored == "xen" else [])]
    missing = [tool for tool in tools if not (root / tool).is_file()]
    if missing:
        raise MirageError(
            f"the Xen userspace packages hold no {', '.join(missing)}",
            hint=f"they come from Debian's {DOM0_PACKAGES[0]} for arm64",
        )
    binaries = [(root / tool).read_bytes() for tool in tools]
    extra: list[tuple[str, bytes, int]] = []
    if xenstored == "mirage":
        extra, extra_binaries = xenstored_files(root, arch)
        binaries += extra_binaries
    libraries = _libraries(root, triplet, binaries)
    if isinstance(libraries, str):
        raise MirageError(
            f"dom0's programs need {libraries}, which none of Debian's packages fetched for"
            f" it holds ({', '.join(DOM0_PACKAGES)})"
        )
    # Modules the kernel has built in are not files: kernel_modules skips them.
    modules = kernel_modules(root, kernel_version, DOM0_MODULES)
    config = {
        "modules": [f"/lib/modules/dom0/{m.name}" for m in modules],
        "finit_module": arch.finit_module,
        "reboot": arch.reboot,
        "xenstored": xenstored,
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
        if path in made:
            return  # a library two programs need, or a module twice
        made.add(path)
        parts = path.split("/")
        for i in range(1, len(parts)):
            folder = "/".join(parts[:i])
            if folder not in made:
                made.add(folder)
                cpio.directory(folder)
        cpio.file(path, data, mode)

    for tool in tools:
        file(tool, (root / tool).read_bytes(), 0o755)
    for arc, data, mode in extra:
        file(arc, data, mode)
    for soname, library in sorted(libraries.items()):
        file(f"lib/{triplet}/{soname}", library.read_bytes(), 0o755)
    for module in modules:
        file(f"lib/modules/dom0/{module.name}", module.read_bytes(), 0o644)
    file("etc/mirage-dom0.json", json.dumps(config, indent=1).encode(), 0o644)
    # The guest's bytecode bundle (mirage.vm._bundle) holds the standard library that
    # this /init imports; an image of .pyc files has none and needs none.
    bundle = (
        b"try:\n import _mirage_bundle\nexcept ImportError:\n pass\n"
        b"else:\n _mirage_bundle.install()\n"
    )
    file("init", f"#!/usr/bin/{PY} -IS\n".encode() + bundle + init, 0o755)
    cpio.close()
    return base_initrd + buf.getvalue()
