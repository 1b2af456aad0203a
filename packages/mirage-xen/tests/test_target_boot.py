"""The xen target: examples/hello built as a PVH image and booted under QEMU, on
Debian's Xen hypervisor (as its first domain) and directly as a PVH guest.

Needs qemu-system-x86_64, apt-get and dpkg-deb; the kernel, runtime and hypervisor
packages are cached (MIRAGE_CACHE) after the first build.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

pytestmark = [
    pytest.mark.skipif(
        shutil.which("qemu-system-x86_64") is None,
        reason="qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)",
    ),
    pytest.mark.skipif(
        shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None,
        reason="the xen target takes its kernel, runtime and hypervisor from Debian packages",
    ),
]


def mirage(directory: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mirage.core", "-C", str(directory), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def copy_example(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(EXAMPLES / name, target, ignore=shutil.ignore_patterns("mirage", "dist"))
    return target


@pytest.mark.parametrize("boot", ["hypervisor", "pvh"])
def test_hello_on_xen(tmp_path: Path, boot: str) -> None:
    """On Debian's Xen hypervisor as its first domain, and directly as a PVH guest."""
    from mirage.vm.images import has_pvh_entry

    project = copy_example("hello", tmp_path)
    assert mirage(project, "configure", "-t", "xen", "--xen-boot", boot).returncode == 0
    built = mirage(project, "build", timeout=600)
    assert built.returncode == 0, built.stderr
    dist = project / "dist"
    assert has_pvh_entry((dist / "hello.vmlinux").read_bytes())
    xl = (dist / "hello.xl.cfg").read_text()
    assert "type = 'pvh'" in xl and "kernel = 'hello.vmlinux'" in xl
    ran = mirage(project, "run", "--count", "2", "--hello", f"hi from xen ({boot})", timeout=240)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.splitlines() == [f"hi from xen ({boot})"] * 2
