"""The boot matrix: the examples built for every target, booted, and asked.

For each cell (an example on a target) this builds a fresh copy of the example with
``mirage configure`` and ``mirage build``, starts ``mirage run``, waits for the
application's marker line on the streamed console and, for the static website, asks
it for ``/`` over HTTP from this host (through QEMU's user-mode network and port
forward, so through the guest's own TCP/IP stack, mirage-tcpip, on its virtio NIC);
on virtio x86_64 and arm64 virt also over HTTPS (mirage-tls in the guest, a certificate made here,
this host's OpenSSL checking it). Every step has a timeout; a cell that needs a
missing tool is reported as skipped, naming the tool. On a terminal the step under
way shows on one line; otherwise (CI) only a line per cell is printed.

    python tools/boot_matrix.py              # the whole matrix
    python tools/boot_matrix.py -k xen       # cells whose name holds "xen"
    python tools/boot_matrix.py --list

Exit status 1 if any cell failed. Software emulation (TCG) only: a boot takes 5-20 s.
"""

from __future__ import annotations

import argparse
import queue
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
BUILD_TIMEOUT = 900.0
BOOT_TIMEOUT = 240.0
HTTP_TIMEOUT = 60.0
HELLO = "hello from the boot matrix"
WEBSITE_MARKER = "static-website: serving on"


@dataclass(frozen=True, slots=True)
class Cell:
    """One example on one target, and what proves it works."""

    name: str
    example: str
    configure: tuple[str, ...]
    needs: tuple[str, ...]  # commands that must be installed
    run_args: tuple[str, ...] = ()
    marker: str = ""
    http: bool = False  # ask the website for / once the marker is seen
    exit_status: int | None = 0  # for cells that run to the end
    refused: str = ""  # the build must fail, saying this
    https: bool = False  # the website gets a certificate and is asked over HTTPS too


QEMU_X86 = ("qemu-system-x86_64", "apt-get", "dpkg-deb")
QEMU_ARM = ("qemu-system-aarch64", "apt-get", "dpkg-deb")
QEMU_ARMV7 = ("qemu-system-arm", "apt-get", "dpkg-deb", "dpkg:armhf")
"""``dpkg:ARCH``: dpkg knows the foreign architecture (the runtime comes from it)."""


def _hello(name: str, configure: tuple[str, ...], needs: tuple[str, ...]) -> Cell:
    return Cell(
        f"hello/{name}",
        "hello",
        configure,
        needs,
        ("--count", "2", "--delay-ms", "1", "--hello", HELLO),
        HELLO,
    )


def _website(name: str, configure: tuple[str, ...], needs: tuple[str, ...]) -> Cell:
    return Cell(
        f"static-website/{name}", "static-website", configure, needs, (), WEBSITE_MARKER, True
    )


def _website_https(name: str, configure: tuple[str, ...], needs: tuple[str, ...]) -> Cell:
    """The website over HTTP and HTTPS, in one boot (a cell of its own would cost ~25 s)."""
    return Cell(
        f"static-website+https/{name}",
        "static-website",
        configure,
        needs,
        marker="static-website: serving on https",
        http=True,
        https=True,
    )


CELLS = (
    _hello("unix", ("-t", "unix"), ()),
    _website("unix", ("-t", "unix"), ()),
    _hello("virtio-x86_64", ("-t", "virtio"), QEMU_X86),
    _website_https("virtio-x86_64", ("-t", "virtio"), QEMU_X86),
    _hello("xen-x86_64-on-xen", ("-t", "xen", "--xen-boot", "hypervisor"), QEMU_X86),
    _website("xen-x86_64-on-xen", ("-t", "xen", "--xen-boot", "hypervisor"), QEMU_X86),
    _website("xen-x86_64-pvh", ("-t", "xen", "--xen-boot", "pvh"), QEMU_X86),
    _hello("xen-arm64-dom0less", ("-t", "xen-arm64"), QEMU_ARM),
    # Xen's PV network from a driver domain (dom0) booted beside the dom0less guest.
    _website("xen-arm64-dom0less", ("-t", "xen-arm64"), QEMU_ARM),
    _hello("arm64-virt", ("-t", "arm", "--board", "virt-aarch64"), QEMU_ARM),
    _hello("armv7-virt", ("-t", "arm", "--board", "virt-armv7"), QEMU_ARMV7),
    # The image's cryptography comes from the arm64 wheels.
    _website_https("arm64-virt", ("-t", "arm", "--board", "virt-aarch64"), QEMU_ARM),
    # On 32-bit ARM: cryptography's armv7l wheel, Debian's armhf _cffi_backend.
    _website_https("armv7-virt", ("-t", "arm", "--board", "virt-armv7"), QEMU_ARMV7),
)


@dataclass
class Result:
    cell: Cell
    status: str = "ok"  # ok, FAILED, skipped
    detail: str = ""
    timings: dict[str, float] = field(default_factory=dict)


class Progress:
    """The step under way, on one line rewritten in place: on a terminal only, so that
    CI logs hold just the results."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self.started = time.monotonic()

    def show(self, text: str) -> None:
        if self.enabled:
            elapsed = time.monotonic() - self.started
            self.stream.write(f"\r\033[K[{elapsed:4.0f} s] {text}")
            self.stream.flush()

    def clear(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()


PROGRESS = Progress()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _mirage(project: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mirage.core", "-C", str(project), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed P-256 certificate for ``localhost`` and its key, as PEM files."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _get(url: str, deadline: float, context: ssl.SSLContext | None = None) -> bytes:
    """GET ``url``, retrying until ``deadline`` (the guest may still be settling)."""
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            remaining = max(1.0, deadline - time.monotonic())
            with urllib.request.urlopen(url, timeout=remaining, context=context) as r:
                if r.status != 200:
                    raise OSError(f"HTTP status {r.status}")
                return bytes(r.read())
        except (OSError, ValueError) as exc:
            last = exc
            time.sleep(1)
    raise TimeoutError(f"no HTTP answer from {url}: {last}")


def _boot(cell: Cell, project: Path, result: Result) -> None:
    args = list(cell.run_args)
    port = tls_port = 0
    context = None
    if cell.http:
        port = _free_port()
        target = cell.configure[1]
        if cell.https:
            # Our TLS (mirage-tls on cryptography's primitives) inside the guest, this
            # host's OpenSSL (Python's ssl module) as the client checking the chain.
            tls_port = _free_port()
            cert, key = _certificate(project)
            context = ssl.create_default_context(cafile=str(cert))
            args += ["--tls-cert", str(cert), "--tls-key", str(key)]
            if target == "unix":
                args += ["--tls-port", str(tls_port)]
        if target == "unix":
            args += ["--port", str(port)]
        else:
            forward = f"{port}:8080" + (f",{tls_port}:8443" if cell.https else "")
            args += ["--vm-forward", forward]
    start = time.monotonic()
    PROGRESS.show(f"{cell.name}: booting")
    child = subprocess.Popen(
        [sys.executable, "-m", "mirage.core", "-C", str(project), "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    seen: list[str] = []

    def pump() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = start + BOOT_TIMEOUT
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"no {cell.marker!r} within {BOOT_TIMEOUT:g} s") from None
            if line is None:
                raise RuntimeError(f"the run ended before {cell.marker!r}")
            seen.append(line)
            if cell.marker in line:
                result.timings["first line"] = time.monotonic() - start
                break
        if cell.http:
            PROGRESS.show(f"{cell.name}: asking the website")
            body = _get(f"http://127.0.0.1:{port}/", time.monotonic() + HTTP_TIMEOUT)
            result.timings["HTTP answer"] = time.monotonic() - start
            if b"<html" not in body.lower():
                raise RuntimeError(f"unexpected body: {body[:80]!r}")
            if cell.https:
                url = f"https://localhost:{tls_port}/"
                secure = _get(url, time.monotonic() + HTTP_TIMEOUT, context)
                result.timings["HTTPS answer"] = time.monotonic() - start
                if secure != body:
                    raise RuntimeError(f"HTTPS gave another body: {secure[:80]!r}")
            child.send_signal(signal.SIGTERM)  # serves forever: stop it
        status = child.wait(timeout=BOOT_TIMEOUT)
        if not cell.http and cell.exit_status is not None and status != cell.exit_status:
            raise RuntimeError(f"exit status {status}, not {cell.exit_status}")
        result.timings["stopped"] = time.monotonic() - start
    except (TimeoutError, RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        result.status = "FAILED"
        result.detail = f"{exc}\n--- console ---\n{_tail(''.join(seen))}"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def _present(need: str) -> bool:
    """A tool on the PATH, or with ``dpkg:ARCH`` a foreign architecture dpkg knows."""
    if not need.startswith("dpkg:"):
        return shutil.which(need) is not None
    if shutil.which("dpkg") is None:
        return False
    out = subprocess.run(
        ["dpkg", "--print-foreign-architectures"], capture_output=True, text=True, check=False
    ).stdout
    return need.removeprefix("dpkg:") in out.split()


def run_cell(cell: Cell, work: Path) -> Result:
    result = Result(cell)
    missing = [need for need in cell.needs if not _present(need)]
    if missing:
        result.status = "skipped"
        result.detail = f"needs {', '.join(missing)}"
        return result
    project = work / cell.name.replace("/", "-")
    shutil.copytree(
        EXAMPLES / cell.example,
        project,
        ignore=shutil.ignore_patterns("mirage", "dist", "__pycache__"),
    )
    start = time.monotonic()
    PROGRESS.show(f"{cell.name}: configuring and building")
    configured = _mirage(project, "configure", *cell.configure, timeout=120)
    if configured.returncode != 0:
        result.status, result.detail = "FAILED", "configure: " + _tail(configured.stderr)
        return result
    built = _mirage(project, "build", timeout=BUILD_TIMEOUT)
    result.timings["build"] = time.monotonic() - start
    if cell.refused:
        if built.returncode == 0 or cell.refused not in built.stderr:
            result.status = "FAILED"
            result.detail = f"the build should fail saying {cell.refused!r}:\n{_tail(built.stderr)}"
        else:
            result.detail = "refused as expected: " + built.stderr.strip().splitlines()[0]
        return result
    if built.returncode != 0:
        result.status, result.detail = "FAILED", "build: " + _tail(built.stderr)
        return result
    _boot(cell, project, result)
    return result


def _report(result: Result, out: Callable[[str], None]) -> None:
    times = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
    out(f"{result.status:8} {result.cell.name:40} {times}")
    if result.detail:
        for line in result.detail.splitlines():
            out(f"{'':9}{line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", dest="select", action="append", default=[], help="cell filter")
    parser.add_argument("--list", action="store_true", help="list the cells and stop")
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it")
    ns = parser.parse_args(argv)
    cells = [c for c in CELLS if not ns.select or any(s in c.name for s in ns.select)]
    if ns.list:
        for cell in cells:
            print(cell.name)
        return 0

    def out(line: str) -> None:
        print(line, flush=True)

    results = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="boot-matrix-") as tmp:
        work = ns.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for cell in cells:
            result = run_cell(cell, work)
            PROGRESS.clear()
            _report(result, out)
            results.append(result)
    failed = [r for r in results if r.status == "FAILED"]
    skipped = [r for r in results if r.status == "skipped"]
    out(
        f"boot matrix: {len(results) - len(failed) - len(skipped)} ok, {len(failed)} failed,"
        f" {len(skipped)} skipped in {time.monotonic() - started:.0f} s"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
