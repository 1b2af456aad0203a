"""Images built from the examples boot under QEMU (software emulation) and run.

Needs qemu-system-x86_64, apt-get and dpkg-deb (Debian), and the package lists; the
kernel and runtime packages are cached (MIRAGE_CACHE), so only the first run
downloads. A boot takes a few seconds under emulation.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mirage.vm._cpio import read_cpio
from mirage.vm.images import image_files

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

pytestmark = [
    pytest.mark.skipif(
        shutil.which("qemu-system-x86_64") is None,
        reason="qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)",
    ),
    pytest.mark.skipif(
        shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None,
        reason="the virtio target takes its kernel and runtime from Debian packages",
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


def test_hello_boots_and_passes_runtime_arguments(tmp_path: Path) -> None:
    project = copy_example("hello", tmp_path)
    assert mirage(project, "configure", "-t", "virtio").returncode == 0
    built = mirage(project, "build")
    assert built.returncode == 0, built.stderr
    initrd = project / "dist" / "hello.initrd"
    assert initrd.exists() and (project / "dist" / "hello.kernel").exists()
    data = initrd.read_bytes()
    files = image_files(data)
    # The image holds the application and its devices, not the tool.
    assert "app/unikernel.pyc" in files and "app/mirage/unix/console.pyc" in files
    assert b"mirage/core/_resolve" not in data and b"pluggy" not in data
    ran = mirage(
        project, "run", "--count", "2", "--hello", "hi from a guest", "--delay-ms", "1", timeout=180
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.splitlines() == ["hi from a guest", "hi from a guest"]
    # /init is compiled ahead (a stub imports it), and so is what the imports compile.
    assert "usr/lib/python3.11/_mirage_vm_init.pyc" in files and "etc/mirage.cache" in files
    # In one bundle, served by the importer /init installs first; CPython's own start
    # still finds encodings and its os landmark as files.
    on_disk = {name for name, (mode, _) in read_cpio(data).items() if name.endswith(".pyc")}
    assert "etc/mirage.bytecode" in files and "app/unikernel.pyc" not in on_disk
    assert on_disk >= {"usr/lib/python3.11/os.pyc", "usr/lib/python3.11/encodings/__init__.pyc"}
    assert "_mirage_bundle.install()" in files["init"].decode()
    # Traced, the guest says how much of that it took and where the time went.
    from mirage.vm._target import qemu_command

    command = qemu_command(project / "dist", "hello", ["--count", "1", "--delay-ms", "0"])
    command[command.index("-append") + 1] += " MIRAGE_TRACE=1"
    booted = subprocess.run(
        command, cwd=project / "dist", capture_output=True, text=True, timeout=180
    )
    lines = [
        line.partition("mirage-vm: ")[2]
        for line in booted.stdout.splitlines()
        if "mirage-vm: " in line
    ]
    steps = [line.split(" ")[1:] for line in lines if line[:1].isdigit()]  # "<time> <what>"
    prepared = next((step for step in steps if step[0] == "prepared:"), None)
    assert prepared is not None, booted.stdout[-3000:]
    assert int(prepared[1]) > 0 and int(prepared[4]) > 0, lines  # functions, expressions
    assert [step[0] for step in steps if step[0] not in ("prepared:", "kernel")] == [
        "init",
        "modules",
        "importing",
        "running",
    ], lines
    assert "mirage-vm: exit status 0" in booted.stdout


def test_the_application_exit_status_comes_back(tmp_path: Path) -> None:
    (tmp_path / "config.py").write_text(
        textwrap.dedent("""
        from mirage.core.dsl import default, job, register
        register("fail", job("unikernel:start", console=default("console")))
    """)
    )
    (tmp_path / "unikernel.py").write_text(
        "async def start(console):\n    await console.log('about to fail')\n"
        "    raise RuntimeError('deliberate')\n"
    )
    assert mirage(tmp_path, "configure", "-t", "virtio").returncode == 0
    assert mirage(tmp_path, "build").returncode == 0
    ran = mirage(tmp_path, "run", timeout=180)
    assert ran.returncode == 1
    assert "about to fail" in ran.stdout
    assert "RuntimeError: deliberate" in ran.stdout + ran.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(child: subprocess.Popen[str], text: str, timeout: float = 180) -> str:
    """Console lines up to the first holding ``text`` (the boot's marker)."""
    assert child.stdout is not None
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line and child.poll() is not None:
            break
        seen += line
        if text in line:
            return seen
    raise AssertionError(f"no {text!r} on the console:\n{seen}")


def _start(project: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mirage.core", "-C", str(project), "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(child: subprocess.Popen[str]) -> None:
    child.terminate()
    child.communicate(timeout=60)
    assert child.returncode == 0


def test_echo_answers_through_the_guest_kernel(tmp_path: Path) -> None:
    """--net socket: the guest kernel's TCP/IP, reached through a port forward."""
    project = copy_example("echo", tmp_path)
    port = _free_port()
    configured = mirage(
        project, "configure", "-t", "virtio", "--net", "socket", "--vm-forward", f"{port}:7"
    )
    assert configured.returncode == 0, configured.stderr
    assert mirage(project, "build").returncode == 0
    child = _start(project)
    try:
        assert "echo: listening on TCP port 7" in _wait_for(child, "listening")
        payload = bytes(range(256)) * 256
        with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
            conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)
            received = b""
            while chunk := conn.recv(65536):
                received += chunk
        assert received == payload
    finally:
        _stop(child)


async def _echo_through_our_stacks(directory: Path, payload: bytes) -> bytes:
    from mirage.net import SocketNetwork
    from mirage.tcpip import DirectStack

    network = await SocketNetwork.connect(
        local=f"unix:{directory / 'host.sock'}", remote=f"unix:{directory / 'guest.sock'}"
    )
    stack = await DirectStack.connect(network=network, ipv4="10.0.0.1/24")
    try:
        flow = await asyncio.wait_for(stack.tcp.connect("10.0.0.2", 7), 60)
        await flow.write(payload)
        await flow.shutdown()
        received = b""
        while chunk := await asyncio.wait_for(flow.read(), 60):
            received += chunk
        await flow.close()
        return received
    finally:
        await stack.disconnect()


def test_echo_over_a_datagram_link_between_our_stacks(tmp_path: Path) -> None:
    """The default: our TCP/IP stack in the guest on its virtio NIC, the NIC wired by
    QEMU's -netdev dgram (no privilege) to our stack in this process, over
    mirage-net's socket network."""
    project = copy_example("echo", tmp_path)
    assert mirage(project, "configure", "-t", "virtio").returncode == 0
    built = mirage(project, "build")
    assert built.returncode == 0, built.stderr
    plan = (project / "mirage" / "plan.json").read_text()
    assert '"direct_stack"' in plan and '"packet"' in plan
    link = tmp_path / "link"
    link.mkdir()
    child = _start(
        project, "--vm-net", f"dgram:unix:{link / 'guest.sock'},unix:{link / 'host.sock'}"
    )
    try:
        assert "echo: listening on TCP port 7" in _wait_for(child, "listening")
        payload = bytes(range(256)) * 256
        assert asyncio.run(_echo_through_our_stacks(link, payload)) == payload
    finally:
        _stop(child)


def _arm64_packages_known() -> bool:
    if shutil.which("dpkg") is None:
        return False
    out = subprocess.run(
        ["dpkg", "--print-foreign-architectures"], capture_output=True, text=True, check=False
    ).stdout
    return "arm64" in out.split()


@pytest.mark.skipif(
    shutil.which("qemu-system-aarch64") is None,
    reason="qemu-system-aarch64 is not installed (apt-get install qemu-system-arm)",
)
@pytest.mark.skipif(
    not _arm64_packages_known(),
    reason="dpkg does not know arm64 (dpkg --add-architecture arm64 && apt-get update)",
)
def test_an_xz_initramfs_is_smaller_and_boots(tmp_path: Path) -> None:
    project = copy_example("hello", tmp_path)
    assert mirage(project, "configure", "-t", "virtio", "--vm-compress", "xz").returncode == 0
    built = mirage(project, "build")
    assert built.returncode == 0, built.stderr
    data = (project / "dist" / "hello.initrd").read_bytes()
    assert data[:6] == b"\xfd7zXZ\x00" and data[7] == 0x01  # XZ, CRC32 (what Linux reads)
    ran = mirage(project, "run", "--count", "1", "--hello", "unpacked by the kernel", timeout=180)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.splitlines() == ["unpacked by the kernel"]


def test_hello_boots_on_aarch64_from_an_x86_64_build(tmp_path: Path) -> None:
    project = copy_example("hello", tmp_path)
    assert mirage(project, "configure", "-t", "virtio", "--vm-arch", "aarch64").returncode == 0
    built = mirage(project, "build", timeout=600)
    assert built.returncode == 0, built.stderr
    ran = mirage(project, "run", "--count", "1", "--hello", "hi from arm64", timeout=180)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.splitlines() == ["hi from arm64"]


def test_a_disk_image_is_the_guests_block_device_and_a_tar_store(tmp_path: Path) -> None:
    """A raw disk image (a tar archive) attached as a virtio disk: the target's default
    block device reads its sectors, and mirage-kv's tar store reads it as files."""
    import io
    import tarfile

    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, body in (("index.html", b"<p>from the disk</p>\n"), ("a/b.txt", b"deep\n")):
            member = tarfile.TarInfo(name)
            member.size = len(body)
            tar.addfile(member, io.BytesIO(body))
    data = archive.getvalue()
    disk = tmp_path / "disk.img"
    disk.write_bytes(data + bytes(-len(data) % 4096 + 4096))  # whole sectors, and a spare
    project = tmp_path / "app"
    project.mkdir()
    (project / "config.py").write_text(
        textwrap.dedent("""
        from mirage.core.dsl import default, impl, job, register
        register("disk", job(
            "unikernel:start",
            console=default("console"),
            block=default("block"),
            store=impl("tar", path="/dev/disk0", dist="mirage-kv"),
        ))
    """)
    )
    (project / "unikernel.py").write_text(
        textwrap.dedent("""
        async def start(console, block, store):
            info = await block.info()
            first = await block.read(0, 1)
            await console.log(f"disk: {info.size_sectors} sectors of {info.sector_size}")
            await console.log(f"first sector names {first[:10].decode()}")
            for key in ("index.html", "a/b.txt"):
                await console.log(f"{key}: {(await store.get(key)).decode().strip()}")
    """)
    )
    configured = mirage(project, "configure", "-t", "virtio", "--vm-disk", str(disk))
    assert configured.returncode == 0, configured.stderr
    built = mirage(project, "build")
    assert built.returncode == 0, built.stderr
    assert b"virtio_blk.ko" in (project / "dist" / "disk.initrd").read_bytes()
    ran = mirage(project, "run", timeout=240)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.splitlines() == [
        f"disk: {disk.stat().st_size // 512} sectors of 512",
        "first sector names index.html",
        "index.html: <p>from the disk</p>",
        "a/b.txt: deep",
    ]
