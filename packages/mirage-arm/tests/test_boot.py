"""ARM images built on this (x86_64) machine from Debian's ARM packages, booted under QEMU.

hello and the static website on the arm64 ``virt`` board and as Xen's dom0less guest
(the website with a driver domain for its network) boot in the boot matrix
(tools/boot_matrix.py, ``nox -s boot``); here: what the matrix does not cover (the
exit status through Xen, dom0's ramdisk, armv7, the real boards' files).

Needs qemu-system-aarch64 / qemu-system-arm (Debian's qemu-system-arm), apt-get and
dpkg-deb, and dpkg knowing the foreign architecture (arm64; armhf for the 32-bit
boards). The packages are cached (MIRAGE_CACHE), so only the first run downloads. A
boot takes about 5 s under emulation; Xen's a little longer.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mirage.arm import pull_fdt

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _foreign(arch: str) -> bool:
    if shutil.which("dpkg") is None:
        return False
    out = subprocess.run(
        ["dpkg", "--print-foreign-architectures"], capture_output=True, text=True, check=False
    ).stdout
    return arch in out.split()


pytestmark = pytest.mark.skipif(
    shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None,
    reason="ARM images take their kernel and runtime from Debian packages (apt-get, dpkg-deb)",
)


def _missing(qemu: str, arch: str) -> str | None:
    if shutil.which(qemu) is None:
        return f"{qemu} is not installed (apt-get install qemu-system-arm)"
    if not _foreign(arch):
        return f"dpkg does not know {arch} (dpkg --add-architecture {arch} && apt-get update)"
    return None


_ARM64 = _missing("qemu-system-aarch64", "arm64")
_ARMHF = _missing("qemu-system-arm", "armhf")
needs_arm64 = pytest.mark.skipif(_ARM64 is not None, reason=_ARM64 or "")
needs_armhf = pytest.mark.skipif(_ARMHF is not None, reason=_ARMHF or "")


def mirage(directory: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mirage.core", "-C", str(directory), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def hello(tmp_path: Path, *configure: str) -> Path:
    project = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", project, ignore=shutil.ignore_patterns("mirage", "dist"))
    configured = mirage(project, "configure", *configure)
    assert configured.returncode == 0, configured.stderr
    built = mirage(project, "build", timeout=600)
    assert built.returncode == 0, built.stderr
    return project


@needs_arm64
def test_hello_is_built_as_a_dom0less_guest_of_xen_on_arm64(tmp_path: Path) -> None:
    project = hello(tmp_path, "-t", "xen-arm64")
    dist = project / "dist"
    tree = pull_fdt((dist / "hello.dtb").read_bytes())
    kernel = tree.get("/chosen/domU1/module@49000000")
    ramdisk = tree.get("/chosen/domU1/module@50000000")
    assert kernel.cells("reg")[3] == (dist / "hello.kernel").stat().st_size
    assert ramdisk.cells("reg")[3] == (dist / "hello.initrd").stat().st_size
    assert (dist / "hello.xen").read_bytes()[:4] != b"\x7fELF"  # an arm64 Image
    # It boots in the boot matrix (tools/boot_matrix.py), and below with a status.


@needs_arm64
def test_a_network_guest_gets_a_driver_domain_on_xen_arm64(tmp_path: Path) -> None:
    # The website boots and answers over Xen's PV network in the boot matrix.
    project = tmp_path / "echo"
    shutil.copytree(EXAMPLES / "echo", project, ignore=shutil.ignore_patterns("mirage", "dist"))
    assert mirage(project, "configure", "-t", "xen-arm64").returncode == 0
    built = mirage(project, "build", timeout=600)
    assert built.returncode == 0, built.stderr
    dist = project / "dist"
    guest = (dist / "echo.initrd").read_bytes()
    dom0 = (dist / "echo.dom0.initrd").read_bytes()
    # dom0's ramdisk is the guest's with a second archive appended.
    assert dom0.startswith(guest) and dom0[len(guest) : len(guest) + 6] == b"070701"
    extra = dom0[len(guest) :]
    for name in (
        b"usr/lib/xen-4.17/bin/init-dom0less",
        b"usr/bin/xenstore-write",
        b"libxenlight.so.4.17",
        b"lib/modules/dom0/xen-netback.ko",
        b"lib/modules/dom0/bridge.ko",
        b"lib/modules/dom0/virtio_mmio.ko",
        b"etc/mirage-dom0.json",
        # mirage-xen's xenstored (the default), its /dev/xen declarations as cffi's
        # out-of-line module, _cffi_backend for aarch64 and libatomic.
        b"usr/lib/mirage-xenstored/mirage/xen/xenstore/_daemon.pyc",
        b"usr/lib/mirage-xenstored/mirage/xen/linux.pyc",
        b"usr/lib/mirage-xenstored/mirage/xen/_linux_ffi.pyc",
        b"usr/lib/mirage-xenstored/_cffi_backend.cpython-311-aarch64-linux-gnu.so",
        b"usr/lib/python3.11/lib-dynload/mmap.cpython-311-aarch64-linux-gnu.so",
        b"lib/aarch64-linux-gnu/libatomic.so.1",
    ):
        assert name + b"\0" in extra, name
    assert b"usr/lib/xen-4.17/bin/xenstored\0" not in extra  # Debian's: --arm-xenstored xen
    # No C parsing at boot: neither pycparser nor cffi's Python package goes in.
    assert b"usr/lib/mirage-xenstored/cffi/" not in extra
    assert b"usr/lib/mirage-xenstored/pycparser/" not in extra
    assert b"xen-netfront.ko\0" in guest  # the guest's NIC driver
    tree = pull_fdt((dist / "echo.dtb").read_bytes())
    assert tree.get("/chosen/domU1").string("xen,enhanced") == "enabled"
    assert tree.get("/chosen/module@5c000000").cells("reg")[3] == len(dom0)
    assert tree.get("/chosen/domU1/module@50000000").cells("reg")[3] == len(guest)
    script = (dist / "echo.qemu.sh").read_text()
    assert "echo.dom0.initrd" in script and "virtio-net-device,netdev=n0" in script
    # Debian's xenstored instead of ours.
    assert mirage(project, "configure", "-t", "xen-arm64", "--arm-xenstored", "xen").returncode == 0
    assert mirage(project, "build", timeout=600).returncode == 0
    extra = (dist / "echo.dom0.initrd").read_bytes()[len(guest) :]
    assert b"usr/lib/xen-4.17/bin/xenstored\0" in extra
    assert b"usr/lib/mirage-xenstored/" not in extra
    assert b'"xenstored": "xen"' in extra


@needs_arm64
def test_the_exit_status_comes_back_from_xen(tmp_path: Path) -> None:
    (tmp_path / "config.py").write_text(
        textwrap.dedent("""
        from mirage.core.dsl import default, job, register
        register("fail", job("unikernel:start", console=default("console")))
    """)
    )
    (tmp_path / "unikernel.py").write_text(
        "import sys\nasync def start(console):\n    await console.log('about to exit')\n"
        "    sys.exit(3)\n"
    )
    assert mirage(tmp_path, "configure", "-t", "xen-arm64").returncode == 0
    assert mirage(tmp_path, "build", timeout=600).returncode == 0
    ran = mirage(tmp_path, "run", timeout=240)
    assert "about to exit" in ran.stdout
    assert ran.returncode == 3, ran.stdout + ran.stderr


@needs_arm64
def test_hello_is_built_for_the_aarch64_virt_board(tmp_path: Path) -> None:
    project = hello(tmp_path, "-t", "arm", "--board", "virt-aarch64")
    assert pull_fdt((project / "dist" / "hello.dtb").read_bytes()).find("/pl011@9000000")
    # Booted by the boot matrix (hello and the static website answering HTTP).


@needs_arm64
def test_rpi4_artifacts_are_written_not_booted(tmp_path: Path) -> None:
    project = hello(tmp_path, "-t", "arm", "--board", "rpi4")
    dist = project / "dist"
    tree = pull_fdt((dist / "hello.dtb").read_bytes())
    assert "raspberrypi,4-model-b" in tree.root.strings("compatible")
    assert tree.get("/chosen").string("bootargs").startswith("console=ttyS1,115200")
    assert "booti" in (dist / "boot.cmd").read_text()
    assert (dist / "boot.scr").read_bytes()[:4] == bytes.fromhex("27051956")
    ran = mirage(project, "run")
    assert ran.returncode != 0 and "cannot be booted on this machine" in ran.stderr


@needs_armhf
def test_hello_on_the_armv7_virt_board(tmp_path: Path) -> None:
    project = hello(tmp_path, "-t", "arm", "--board", "virt-armv7")
    ran = mirage(project, "run", "--count", "1", "--hello", "hi from armv7", timeout=240)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.splitlines() == ["hi from armv7"]


@needs_armhf
def test_cubieboard2_artifacts_are_written_not_booted(tmp_path: Path) -> None:
    project = hello(tmp_path, "-t", "arm", "--board", "cubieboard2")
    dist = project / "dist"
    tree = pull_fdt((dist / "hello.dtb").read_bytes())
    assert "cubietech,cubieboard2" in tree.root.strings("compatible")
    assert "bootz" in (dist / "boot.cmd").read_text()


@needs_arm64
def test_every_device_tree_debians_arm64_kernel_ships_round_trips() -> None:
    """dtc wrote them: our reader takes each, and our writer gives the same bytes."""
    from mirage.arm import push_fdt
    from mirage.arm._packages import fetch_root
    from mirage.vm._arch import RUNTIME_PACKAGES

    root = fetch_root(list(RUNTIME_PACKAGES), "arm64", "arm64")
    blobs = sorted(root.glob("usr/lib/linux-image-*/**/*.dtb"))
    assert len(blobs) > 100
    for path in blobs:
        data = path.read_bytes()
        assert push_fdt(pull_fdt(data)) == data, path.name


@pytest.mark.parametrize("target", [("-t", "arm"), ("-t", "xen-arm64")])
def test_a_block_device_is_refused_at_build_time(tmp_path: Path, target: tuple[str, ...]) -> None:
    pytest.importorskip("mirage.block", reason="needs mirage-block (the default block device)")
    (tmp_path / "config.py").write_text(
        textwrap.dedent("""
        from mirage.core.dsl import default, job, register
        register("disk", job("unikernel:start", block=default("block")))
    """)
    )
    (tmp_path / "unikernel.py").write_text("async def start(block):\n    pass\n")
    configured = mirage(tmp_path, "configure", *target)
    assert configured.returncode == 0, configured.stderr
    built = mirage(tmp_path, "build")
    assert built.returncode != 0
    assert "images have no disk driver yet" in built.stderr and "-t virtio" in built.stderr


def _website_for(board: str, tmp_path: Path) -> tuple[dict[str, bytes], str]:
    """The static website built for ``board`` with HTTPS: its image's files, and the
    build's messages. Skips where the environment or the package index lacks a part."""
    for module, dist in (("mirage.kv", "mirage-kv"), ("mirage.http", "mirage-http")):
        pytest.importorskip(module, reason=f"the static website needs {dist} installed")
    pytest.importorskip("mirage.tls", reason="needs mirage-tls in the build's environment")
    pytest.importorskip("cryptography", reason="needs cryptography in the build's environment")
    project = tmp_path / "static-website"
    shutil.copytree(
        EXAMPLES / "static-website", project, ignore=shutil.ignore_patterns("mirage", "dist")
    )
    configured = mirage(project, "configure", "-t", "arm", "--board", board)
    assert configured.returncode == 0, configured.stderr
    built = mirage(project, "build", timeout=600)
    assert built.returncode == 0, built.stderr
    if "left out of the image: mirage-tls" in built.stderr:
        pytest.skip(f"pip could not fetch the wheels for {board} (no package index reachable)")
    from mirage.vm.images import image_files

    return image_files((project / "dist" / "www.initrd").read_bytes()), built.stderr


@needs_arm64
def test_https_in_an_arm64_image_takes_cryptography_from_the_arm64_wheels(
    tmp_path: Path,
) -> None:
    files, messages = _website_for("virt-aarch64", tmp_path)
    rust = files.get("app/cryptography/hazmat/bindings/_rust.abi3.so")
    cffi = files.get("app/_cffi_backend.cpython-311-aarch64-linux-gnu.so")
    assert rust is not None and cffi is not None, messages
    for binary in (rust, cffi):
        assert binary[:4] == b"\x7fELF" and binary[18:20] == b"\xb7\x00"  # EM_AARCH64
    assert "app/cryptography/x509/verification.pyc" in files
    assert "lib/aarch64-linux-gnu/libgcc_s.so.1" in files
    # Booted and asked over HTTPS by the boot matrix (static-website+https/arm64-virt).


@needs_armhf
def test_https_in_an_armv7_image_takes_debians_cffi_backend_where_no_wheel_is(
    tmp_path: Path,
) -> None:
    files, messages = _website_for("virt-armv7", tmp_path)
    # cryptography from its armv7l wheel; cffi has none: its backend is Debian's.
    rust = files.get("app/cryptography/hazmat/bindings/_rust.abi3.so")
    cffi = files.get("app/_cffi_backend.cpython-311-arm-linux-gnueabihf.so")
    assert rust is not None and cffi is not None, messages
    for binary in (rust, cffi):
        # ELFCLASS32, EM_ARM, hard-float EABI5
        assert binary[:5] == b"\x7fELF\x01" and binary[18:20] == b"\x28\x00"
        assert int.from_bytes(binary[36:40], "little") & 0xFF000400 == 0x05000400
    assert not any("x86_64" in name or "aarch64" in name for name in files)
    # Booted and asked over HTTPS by the boot matrix (static-website+https/armv7-virt).
