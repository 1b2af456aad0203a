"""The xen target's artifacts: the echo example built as a PVH image, its
``xl.cfg`` read by xl's own parser (libxlutil) and its libvirt description checked by
``virt-xml-validate``.

The images boot in the boot matrix (tools/boot_matrix.py, ``nox -s boot``): hello and
the static website on Debian's Xen hypervisor under QEMU, and the website as a PVH
guest of QEMU, answering HTTP through our TCP/IP stack in the guest. Building needs
apt-get and dpkg-deb (Debian); the packages are cached (MIRAGE_CACHE).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

pytestmark = pytest.mark.skipif(
    shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None,
    reason="the xen target takes its kernel, runtime and hypervisor from Debian packages",
)


def mirage(directory: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mirage.core", "-C", str(directory), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # echo: a network stack, and nothing this package's tests lack (the static
    # website needs mirage-http; it boots in the boot matrix).
    project = tmp_path_factory.mktemp("xen") / "echo"
    shutil.copytree(EXAMPLES / "echo", project, ignore=shutil.ignore_patterns("mirage", "dist"))
    (project / "disk.img").write_bytes(bytes(4096))
    configured = mirage(
        project, "configure", "-t", "xen", "--vm-memory", "200", "--vm-disk", "disk.img"
    )
    assert configured.returncode == 0, configured.stderr
    built = mirage(project, "build")
    assert built.returncode == 0, built.stderr
    return project / "dist"


def test_the_image_is_a_pvh_kernel_with_its_nic_drivers(image: Path) -> None:
    from mirage.vm.images import has_pvh_entry

    assert has_pvh_entry((image / "echo.vmlinux").read_bytes())
    initrd = (image / "echo.initrd").read_bytes()
    # virtio under QEMU, Xen's PV NIC on a Xen host; our stack's modules.
    assert b"lib/modules/virtio_net.ko" in initrd and b"lib/modules/xen-netfront.ko" in initrd
    from mirage.vm.images import image_files

    files = image_files(initrd)
    assert "app/mirage/tcpip/stack.pyc" in files and "app/mirage/net/packet.pyc" in files
    # The disk: Xen's PV one on a Xen host, virtio under QEMU.
    assert b"lib/modules/xen-blkfront.ko" in initrd and b"lib/modules/virtio_blk.ko" in initrd


def _xlutil() -> ctypes.CDLL | None:
    for name in ("libxlutil.so.4.17", ctypes.util.find_library("xlutil")):
        if name:
            try:
                return ctypes.CDLL(name)
            except OSError:
                continue
    return None


def test_xl_parses_the_guest_configuration(image: Path) -> None:
    """xl's own configuration parser (libxlutil, as ``xl create`` uses it)."""
    lib = _xlutil()
    if lib is None:
        pytest.skip("needs xl's parser libxlutil (apt-get install libxenmisc4.17)")
    libc = ctypes.CDLL(None)
    libc.fdopen.restype = ctypes.c_void_p
    libc.fdopen.argtypes = [ctypes.c_int, ctypes.c_char_p]
    lib.xlu_cfg_init.restype = ctypes.c_void_p
    lib.xlu_cfg_init.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.xlu_cfg_readfile.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.xlu_cfg_get_string.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_char_p),
        ctypes.c_int,
    ]
    lib.xlu_cfg_get_long.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_long),
        ctypes.c_int,
    ]
    lib.xlu_cfg_destroy.argtypes = [ctypes.c_void_p]
    path = str(image / "echo.xl.cfg").encode()
    report = libc.fdopen(os.dup(2), b"w")
    config = lib.xlu_cfg_init(report, path)
    assert config
    try:
        assert lib.xlu_cfg_readfile(config, path) == 0

        def string(name: str) -> str:
            value = ctypes.c_char_p()
            assert lib.xlu_cfg_get_string(config, name.encode(), ctypes.byref(value), 0) == 0
            assert value.value is not None
            return value.value.decode()

        def number(name: str) -> int:
            value = ctypes.c_long()
            assert lib.xlu_cfg_get_long(config, name.encode(), ctypes.byref(value), 0) == 0
            return value.value

        assert string("type") == "pvh" and string("kernel") == "echo.vmlinux"
        assert string("ramdisk") == "echo.initrd" and number("memory") == 200
        assert "console=hvc0" in string("extra") and "MIRAGE_ARGV=" in string("extra")
        disk = str((image.parent / "disk.img").resolve())
        assert (
            f"disk = ['format=raw, vdev=xvda, access=rw, target={disk}']"
            in (image / "echo.xl.cfg").read_text()
        )
    finally:
        lib.xlu_cfg_destroy(config)


def test_libvirt_accepts_the_domain_description(image: Path) -> None:
    if shutil.which("virt-xml-validate") is None:
        pytest.skip("needs virt-xml-validate (apt-get install libvirt-clients)")
    checked = subprocess.run(
        ["virt-xml-validate", str(image / "echo.xen.libvirt.xml"), "domain"],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
