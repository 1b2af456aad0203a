"""A Xen dom0 boot image whose PID 1 runs some of our Python programs.

Test helper, not a test. Debian's Xen hypervisor boots under QEMU (software
emulation) with Debian's generic kernel as a PV dom0; the initramfs holds CPython
from Debian's packages, the standard-library modules the program imports (found by
importing it on the build host), cffi from Debian's packages, the modules of this
repository it imports, and the kernel modules it names. ``/init`` mounts what it
needs, loads the modules, runs the programs and powers the machine off.

Kernel, hypervisor and runtime come through ``mirage.vm.images`` (cached ``.deb``
files); anything missing makes :func:`unavailable` say what.
"""

from __future__ import annotations

import importlib._bootstrap_external as external
import io
import json
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from mirage.core import MirageError

HERE = Path(__file__).resolve().parent
PACKAGES = HERE.parent.parent
SOURCES = [
    PACKAGES / "mirage-core" / "src",
    PACKAGES / "mirage-xen" / "src",
    PACKAGES / "mirage-vchan" / "src",
]
XEN_PACKAGE = "xen-hypervisor-4.17-amd64"
EXTRA_PACKAGES = (
    "python3-cffi",
    "python3-cffi-backend",
    "python3-pycparser",
    "python3-ply",
    "libatomic1",
    "libgcc-s1",
)
TRIPLET = "x86_64-linux-gnu"
PY = "python3.11"
DIST = "usr/lib/python3/dist-packages"
MARKER = "dom0-probe:"
XEN_TOOLS = [
    "xenstore-utils",
    "xen-utils-4.17",
    "libxenstore4",
    "libxentoolcore1",
    "libxenmisc4.17",
    "libxengnttab1",
    "libxenevtchn1",
    "libxentoollog1",
    "libxencall1",
    "libxenforeignmemory1",
    "libxendevicemodel1",
]

INIT = r"""
import ctypes, json, os, sys

libc = ctypes.CDLL(None, use_errno=True)
for source, target, kind in (("proc", "/proc", "proc"), ("sysfs", "/sys", "sysfs"),
                             ("devtmpfs", "/dev", "devtmpfs"), ("tmpfs", "/tmp", "tmpfs")):
    os.makedirs(target, exist_ok=True)
    libc.mount(source.encode(), target.encode(), kind.encode(), 0, None)
fd = os.open("/dev/hvc0", os.O_RDWR)
for n in (0, 1, 2):
    os.dup2(fd, n)
with open("/etc/probe.json") as f:
    config = json.load(f)
for module in config["modules"]:
    mfd = os.open(module, os.O_RDONLY)
    if libc.syscall(313, mfd, b"", 0) != 0 and ctypes.get_errno() != 17:
        print("dom0-probe: cannot load", module, os.strerror(ctypes.get_errno()), flush=True)
    os.close(mfd)
    os.sync()
sys.path[:0] = ["/app"]
status = 0
for probe in config["probes"]:
    try:
        import marshal
        with open(probe, "rb") as f:
            code = marshal.loads(f.read()[16:])
        exec(code, {"__name__": "__main__", "__file__": probe[:-1]})
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback
        traceback.print_exc()
        status = 1
    if status:
        break
print(f"dom0-probe: exit status {status}", flush=True)
sys.stdout.flush()
libc.sync()
libc.syscall(169, 0xFEE1DEAD, 672274793, 0x4321FEDC, None)
"""


def unavailable() -> str | None:
    """None if an image can be built and booted here, else why not."""
    if sys.version_info[:2] != (3, 11):
        return "the image runs Debian's CPython 3.11, whose bytecode only 3.11 compiles"
    for tool in ("qemu-system-x86_64", "apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian packages qemu-system-x86, apt, dpkg)"
    return None


class _Cpio:
    """The newc format the kernel unpacks."""

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.ino = 1
        self.dirs: set[str] = set()

    def _entry(
        self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)
    ) -> None:
        fields = (self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0)
        self.ino += 1
        header = b"070701" + b"".join(b"%08X" % v for v in fields)
        self.out.write(header + name.encode() + b"\0")
        self.out.write(b"\0" * (-self.out.tell() % 4))
        self.out.write(data)
        self.out.write(b"\0" * (-self.out.tell() % 4))

    def directory(self, path: str) -> None:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if sub and sub not in self.dirs:
                self.dirs.add(sub)
                self._entry(sub, 0o040755)

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        if "/" in path:
            self.directory(path.rsplit("/", 1)[0])
        self._entry(path, 0o100000 | mode, data)

    def node(self, path: str, major: int, minor: int) -> None:
        self._entry(path, 0o020666, rdev=(major, minor))

    def close(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return self.out.getvalue()


def _pyc(source: bytes, filename: str) -> bytes:
    code = compile(source, filename, "exec", dont_inherit=True)
    return bytes(external._code_to_timestamp_pyc(code, 0, 0))  # type: ignore[attr-defined]


_TRACE = """
import json, runpy, sys
sys.path[:0] = {paths!r}
for name in {imports!r}:
    __import__(name)
print(json.dumps({{n: getattr(m, "__file__", None) for n, m in sys.modules.items()}}))
"""


def _trace(imports: Iterable[str], paths: list[Path]) -> dict[str, str | None]:
    code = _TRACE.format(paths=[str(p) for p in paths], imports=list(imports))
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise MirageError("tracing the probe's imports failed:\n" + result.stderr[-2000:])
    files: dict[str, str | None] = json.loads(result.stdout)
    return files


def build(
    probes: Sequence[Path],
    imports: Iterable[str],
    modules: Iterable[str],
    out: Path,
    *,
    programs: Iterable[str] = (),
    extra_packages: Iterable[str] = (),
) -> tuple[Path, Path, Path]:
    """(hypervisor, vmlinux, initrd) for running ``probes`` in dom0, in order."""
    from mirage.vm.images import (
        RUNTIME_PACKAGES,
        cache_dir,
        fetch,
        kernel_modules,
        kernel_package,
        library_closure,
        unpack,
    )

    kernel_pkg = kernel_package("amd64", "amd64")
    packages = [kernel_pkg, XEN_PACKAGE, *RUNTIME_PACKAGES, *EXTRA_PACKAGES, *extra_packages]
    root = unpack(fetch(packages, "amd64"))
    version = kernel_pkg.removeprefix("linux-image-")
    bzimage = root / "boot" / f"vmlinuz-{version}"
    vmlinux = cache_dir() / "vmlinux" / f"{bzimage.name}.elf"
    if not vmlinux.exists():
        vmlinux.parent.mkdir(parents=True, exist_ok=True)
        tmp = vmlinux.with_suffix(f".tmp{os.getpid()}")
        data = bzimage.read_bytes()
        xz = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        tmp.write_bytes(xz.decompress(data[data.index(b"\xfd7zXZ\x00") :]))
        tmp.replace(vmlinux)
    xen = out.parent / "xen"
    xen.write_bytes(zlib.decompress((root / "boot" / "xen-4.17-amd64.gz").read_bytes(), 31))

    cpio = _Cpio()
    for name in ("dev", "proc", "sys", "tmp", "app", "etc", "lib/modules"):
        cpio.directory(name)
    for name, major, minor in (
        ("console", 5, 1),
        ("null", 1, 3),
        ("urandom", 1, 9),
        ("random", 1, 8),
    ):
        cpio.node(f"dev/{name}", major, minor)

    # Modules: the standard library maps to Debian's; the rest goes under /app.
    dist = root / DIST
    search = [dist, *SOURCES]
    traced = _trace(["ctypes", "json", "marshal", "traceback", *imports], search)
    host_stdlib = Path(os.__file__).parent
    deb_stdlib = root / "usr" / "lib" / PY
    binaries: list[bytes] = []
    lib_dirs = [root / "lib" / TRIPLET, root / "usr" / "lib" / TRIPLET]
    for name, filename in sorted(traced.items()):
        if filename is None:
            continue
        path = Path(filename)
        if path.is_relative_to(host_stdlib):
            rel = path.relative_to(host_stdlib)
            if rel.parts[0] == "lib-dynload":
                src = deb_stdlib / "lib-dynload" / f"{name}.cpython-311-{TRIPLET}.so"
                if not src.exists():
                    continue  # built into Debian's interpreter
                data = src.read_bytes()
                if isinstance(library_closure([data], lib_dirs), str):
                    continue  # optional (ssl, hashlib's OpenSSL): its libraries are not here
                binaries.append(data)
                cpio.file(f"usr/lib/{PY}/lib-dynload/{src.name}", data, 0o755)
                continue
            src = deb_stdlib / rel
            cpio.file(
                f"usr/lib/{PY}/{rel.with_suffix('.pyc')}",
                _pyc(src.read_bytes(), "/" + str(src.relative_to(root))),
            )
            continue
        base = next((p for p in search if path.is_relative_to(p)), None)
        if base is None:
            raise MirageError(f"{name} ({filename}) is neither standard nor ours")
        rel = path.relative_to(base)
        if path.suffix == ".so":
            data = path.read_bytes()
            binaries.append(data)
            cpio.file(f"app/{rel}", data, 0o755)
        else:
            cpio.file(f"app/{rel.with_suffix('.pyc')}", _pyc(path.read_bytes(), f"/app/{rel}"))
    for probe in probes:
        cpio.file(f"app/{probe.stem}.pyc", _pyc(probe.read_bytes(), f"/app/{probe.name}"))
    # Programs of the packages (hard links of one multi-call binary become copies).
    for program in programs:
        data = (root / program).resolve().read_bytes()
        cpio.file(program, data, 0o755)
        binaries.append(data)

    # The interpreter and shared libraries (libatomic is opened by name at run time).
    python = (root / "usr" / "bin" / PY).read_bytes()
    cpio.file(f"usr/bin/{PY}", python, 0o755)
    found: dict[str, Path] = {}
    for data in (python, *binaries, (lib_dirs[1] / "libatomic.so.1").read_bytes()):
        libs = library_closure([data], lib_dirs)
        if isinstance(libs, str):
            raise MirageError(f"no runtime package holds {libs}")
        found.update(libs)
    # Opened by name at run time: libatomic by cffi, libgcc_s by glibc's pthread_exit.
    found["libatomic.so.1"] = (lib_dirs[1] / "libatomic.so.1").resolve()
    found["libgcc_s.so.1"] = (lib_dirs[0] / "libgcc_s.so.1").resolve()
    for soname, lib in sorted(found.items()):
        cpio.file(f"lib/{TRIPLET}/{soname}", lib.read_bytes(), 0o755)
    cpio.file(
        "lib64/ld-linux-x86-64.so.2",
        (lib_dirs[0] / "ld-linux-x86-64.so.2").resolve().read_bytes(),
        0o755,
    )

    kos = kernel_modules(root, version, modules)
    for ko in kos:
        cpio.file(f"lib/modules/{ko.name}", ko.read_bytes())
    config = {
        "modules": [f"/lib/modules/{ko.name}" for ko in kos],
        "probes": [f"/app/{probe.stem}.pyc" for probe in probes],
    }
    cpio.file("etc/probe.json", json.dumps(config).encode())
    cpio.file("init", f"#!/usr/bin/{PY} -IS\n".encode() + INIT.encode(), 0o755)
    out.write_bytes(cpio.close())
    return xen, vmlinux, out


def command(xen: Path, vmlinux: Path, initrd: Path) -> list[str]:
    """QEMU (software emulation) running Xen with the image as dom0."""
    return [
        "qemu-system-x86_64",
        "-accel",
        "tcg",
        "-cpu",
        "qemu64,+svm,+rdrand",
        "-m",
        "1024",
        "-nographic",
        "-nodefaults",
        "-serial",
        "stdio",
        "-no-reboot",
        "-kernel",
        str(xen),
        "-append",
        "console=com1 com1=115200,8n1 dom0_mem=512M noreboot",
        "-initrd",
        f"{vmlinux} console=hvc0 quiet,{initrd}",
    ]


def boot(
    probes: Sequence[Path],
    imports: Iterable[str],
    modules: Iterable[str],
    *,
    timeout: float = 240,
    programs: Iterable[str] = (),
    extra_packages: Iterable[str] = (),
) -> list[str]:
    """Build, boot and collect the console lines up to the exit marker."""
    with tempfile.TemporaryDirectory() as tmp:
        xen, vmlinux, initrd = build(
            probes,
            imports,
            modules,
            Path(tmp) / "initrd.cpio",
            programs=programs,
            extra_packages=extra_packages,
        )
        proc = subprocess.Popen(
            command(xen, vmlinux, initrd),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        lines: list[str] = []
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip("\r\n")
                lines.append(line)
                if f"{MARKER} exit status" in line or "(XEN) Hardware Dom0" in line:
                    break
        finally:
            timer.cancel()
            proc.kill()
            proc.wait()
        return lines


if __name__ == "__main__":  # manual runs: python dom0_image.py probe.py import...
    XS = [f"usr/bin/xenstore-{n}" for n in ("read", "write", "ls", "rm")]
    XS.append("usr/lib/xen-4.17/bin/vchan-socket-proxy")
    print(
        "\n".join(
            boot(
                [Path(p) for p in sys.argv[1].split(",")],
                sys.argv[2:],
                ["xen_gntalloc", "xen_gntdev", "xen_evtchn", "xen_privcmd"],
                programs=XS,
                extra_packages=XEN_TOOLS,
                timeout=150,
            )
        )
    )
