"""What other hypervisor targets (mirage-xen's ``xen``, mirage-arm's boards) build
images with: the distribution packages, the initramfs writer, the guest network
(QEMU's side and the guest's arguments), the console streamer."""

from __future__ import annotations

from pathlib import Path

from ._arch import ARCHES, RUNTIME_PACKAGES, Arch
from ._bundle import PATH as BUNDLE_PATH
from ._bundle import unpack as unpack_bundle
from ._console import MARKER, ConsoleFilter, Seen, stream
from ._cpio import CpioWriter, read_cpio
from ._debs import cache_dir, fetch, kernel_package, unpack
from ._elf import has_pvh_entry, library_closure, needed_libraries
from ._image import _SKIP_STDLIB, PY, Image, _Stdlib, build_initramfs, find_kernel, trace_imports
from ._image import _kernel_modules as kernel_modules
from ._image import _pyc as compile_pyc
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
from ._wheels import fetch_wheel, unpack_wheel

__all__ = [
    "ARCHES",
    "DISK_MODULES",
    "GUEST_GATEWAY",
    "GUEST_IPV4",
    "MARKER",
    "NIC",
    "PY",
    "RUNTIME_PACKAGES",
    "Seen",
    "Arch",
    "ConsoleFilter",
    "CpioWriter",
    "Image",
    "Netdev",
    "build_initramfs",
    "cache_dir",
    "compile_pyc",
    "direct_boot",
    "disk_args",
    "disk_notes",
    "fetch",
    "foreign_wheel",
    "find_kernel",
    "guest_boot",
    "has_pvh_entry",
    "image_files",
    "host_files",
    "kernel_command_line",
    "kernel_modules",
    "kernel_package",
    "library_closure",
    "needed_libraries",
    "needs_network",
    "network_notes",
    "parse_netdev",
    "qemu_netdev_args",
    "run_timeout",
    "split_run_options",
    "stack_kind",
    "stdlib_for",
    "stream",
    "stream_console",
    "unpack",
]


def stdlib_for(
    root: Path, arch: Arch, scripts: list[Path], search_path: list[Path]
) -> dict[str, Path]:
    """The files of the runtime's standard library (under ``root``) that ``scripts``
    import when run on the build host with ``search_path`` (a trace, as for an
    application), with the modules those import within their own packages."""
    traced = trace_imports(scripts, search_path)
    stdlib = _Stdlib(root, arch)
    stdlib.add(n for n in traced if n.split(".")[0] not in _SKIP_STDLIB)
    return dict(stdlib.files)


def foreign_wheel(project: str, version: str, arch: Arch) -> Path:
    """The unpacked wheel of ``project`` ``version`` for ``arch`` (CPython 3.11),
    downloaded by pip unless the cache has it."""
    return unpack_wheel(fetch_wheel(project, version, arch.name))


def image_files(initrd: bytes) -> dict[str, bytes]:
    """The regular files of an initramfs (as written, or as one XZ stream), by path
    without the leading ``/``; the modules of its bytecode bundle are listed as the
    ``.pyc`` files they stand for, with their marshalled code."""
    import lzma
    import stat

    if initrd[:6] == b"\xfd7zXZ\0":
        initrd = lzma.decompress(initrd)
    files = {name: data for name, (mode, data) in read_cpio(initrd).items() if stat.S_ISREG(mode)}
    bundle = files.get(BUNDLE_PATH.lstrip("/"))
    if bundle is not None:
        index, code = unpack_bundle(bundle)
        for _is_package, origin, offset, length, _deferred in index.values():
            files[origin.lstrip("/")] = bytes(code[offset : offset + length])
    return files
