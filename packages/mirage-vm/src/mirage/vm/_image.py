"""Writing the boot image: a distribution kernel and an initramfs of our own.

The initramfs holds, and holds only:

- CPython from the distribution's packages and the shared libraries it and the
  extension modules in use need (found from their ELF ``DT_NEEDED`` entries);
- sourceless bytecode of exactly the standard-library modules the application
  reaches: the modules its import traces (an interpreter imports the generated main
  and ``/init``, and lists ``sys.modules``), closed over the imports written in those
  modules' own sources, so that imports made later (inside functions) are there too;
- the application's own modules and the devices it uses (as the unix zipapp has them);
- for an application that requires mirage-tls: mirage-tls and the compiled
  ``cryptography`` (with ``_cffi_backend``) of the build's environment;
- the kernel modules the chosen devices need, with their dependencies read from each
  module's ``.modinfo``;
- what the application's imports would compile at every boot, compiled ahead
  (``/etc/mirage.cache``, see :mod:`mirage.vm._record`);
- the device nodes CPython needs before devtmpfs is mounted, ``/init``'s bytecode and
  ``/init`` (which imports it).

The bytecode goes into one file, ``/etc/mirage.bytecode``, served by the importer of
:mod:`mirage.vm._bundle` (``--vm-bytecode bundle``, the default), or as one ``.pyc``
file per module where each ``.py`` would be (``--vm-bytecode files``).
"""

from __future__ import annotations

import importlib._bootstrap_external as external
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mirage.core import MirageError
from mirage.core.build import ArtifactContext, collect_modules

from . import _bundle
from ._arch import Arch
from ._compress import compress_initrd
from ._cpio import CpioWriter
from ._elf import ElfError, library_closure, without_sections

__all__ = ["Image", "build_initramfs", "find_kernel"]

PY = "python3.11"
STDLIB = f"usr/lib/{PY}"
NET_MODULES = ("virtio_net", "virtio_pci")
INIT_MODULE = "_mirage_vm_init"  # /init's code, in the image's standard-library folder
BUNDLE_MODULE = "_mirage_bundle"  # the importer of the bytecode bundle (mirage.vm._bundle)
BYTECODE_ON_DISK = ("encodings", "os")
"""Modules that stay files in a bundled image: CPython imports ``encodings`` before
``/init`` runs, and finds its library by the ``os`` module's file."""


@dataclass
class Image:
    """A built image: kernel and initramfs paths, what went in and what was left out."""

    kernel: Path
    initrd: Path
    files: int = 0
    stdlib_modules: int = 0
    app_modules: int = 0
    kernel_modules: list[str] = field(default_factory=list)
    size: int = 0
    left_out: list[str] = field(default_factory=list)


def _pyc(source: bytes, filename: str) -> bytes:
    code = compile(source, filename, "exec", dont_inherit=True)
    return bytes(external._code_to_timestamp_pyc(code, 0, 0))  # type: ignore[attr-defined]


def _module_name(rel: str) -> tuple[str, bool]:
    """The module name and whether it is a package, of a file ``rel`` (``.py`` or
    ``.pyc``) relative to its folder on the path."""
    parts = rel.rpartition(".")[0].split("/")
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def find_kernel(root: Path) -> tuple[Path, str]:
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise MirageError(
            f"no kernel in {root / 'boot'}", hint="pass a kernel of your own with --kernel"
        )
    kernel = kernels[-1]
    return kernel, kernel.name.removeprefix("vmlinuz-")


_TRACE = """
import runpy, sys, sysconfig
from importlib.machinery import PathFinder, SourceFileLoader, SourcelessFileLoader
sys.path[:0] = {paths!r}
Module = type(sys)
used = set()
watching = True
class Watched(Module):
    def __getattribute__(self, attr):
        if watching and attr not in ("__spec__", "__name__"):
            used.add(Module.__getattribute__(self, "__name__"))
        return Module.__getattribute__(self, attr)
class Watching:
    def __init__(self, loader):
        self.loader = loader
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        self.loader.exec_module(module)
        if type(module) is Module:
            module.__class__ = Watched
stdlib = sysconfig.get_paths()["stdlib"] + "/"
class Stdlib:
    @staticmethod
    def find_spec(name, path=None, target=None):
        spec = PathFinder.find_spec(name, path, target)
        loader = getattr(spec, "loader", None)
        if (
            isinstance(loader, (SourceFileLoader, SourcelessFileLoader))
            and spec.origin.startswith(stdlib)
            and "/site-packages/" not in spec.origin
        ):
            spec.loader = Watching(loader)
        return spec
sys.meta_path.insert(sys.meta_path.index(PathFinder), Stdlib)
import builtins
real_import = builtins.__import__
by_application = set()
def recording_import(name, globals=None, locals=None, fromlist=(), level=0):
    module = real_import(name, globals, locals, fromlist, level)
    where = (globals or {{}}).get("__file__") or ""
    if watching and where and (not where.startswith(stdlib) or "/site-packages/" in where):
        if level:
            base = (globals.get("__package__") or "").rsplit(".", level - 1)[0]
            name = base + "." + name if name else base
        parts = name.split(".")
        by_application.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        by_application.update(name + "." + f for f in fromlist or ())
    return module
builtins.__import__ = recording_import
for at, script in enumerate({scripts!r}):
    watching = at < {watched!r}
    runpy.run_path(script, run_name="__mirage_trace__")
for name, module in sorted(sys.modules.items()):
    unused = type(module) is Watched and name not in used and name not in by_application
    print(name, "unused" if unused else "")
"""


def trace(
    scripts: Iterable[Path], search_path: Iterable[Path], watched: int | None = None
) -> tuple[set[str], set[str]]:
    """Module names imported by running ``scripts`` up to (not into) their main, and
    the standard-library ones among them that the first ``watched`` scripts (all by
    default) did not use: whose attributes no code read (importing a module binds it;
    its user reads it), and that only the standard library imports (a module the
    application imports itself it uses later, when it runs: loading it then costs
    more, with the collector on). The image's bundle defers those
    (:mod:`mirage.vm._bundle`)."""
    names = [str(s) for s in scripts]
    code = _TRACE.format(
        paths=[str(p) for p in search_path],
        scripts=names,
        watched=len(names) if watched is None else watched,
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise MirageError(
            "tracing the application's imports failed:\n" + result.stderr.strip()[-2000:],
            hint="the generated main must import cleanly on the build host",
        )
    lines = [line.split() for line in result.stdout.splitlines() if line.strip()]
    return {words[0] for words in lines}, {words[0] for words in lines if words[1:] == ["unused"]}


def trace_imports(scripts: Iterable[Path], search_path: Iterable[Path]) -> set[str]:
    """Module names imported by running ``scripts`` up to (not into) their main."""
    return trace(scripts, search_path)[0]


def _start_recording(
    scripts: Iterable[Path], search_path: Iterable[Path], out: Path
) -> subprocess.Popen[bytes]:
    """Runs the scripts with :mod:`mirage.vm._record` recording the work their imports
    do that the build can do ahead (alongside :func:`trace_imports`)."""
    out.unlink(missing_ok=True)
    paths = os.pathsep.join(str(p) for p in search_path)
    return subprocess.Popen(
        [sys.executable, "-I", "-S", str(Path(__file__).parent / "_record.py"), str(out), paths]
        + [str(s) for s in scripts],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _recorded(recorder: subprocess.Popen[bytes], out: Path) -> bytes | None:
    """The boot cache :func:`_start_recording` wrote, or None if it failed (the image
    then does without, and the build says so: the cache only saves time)."""
    _, errors = recorder.communicate()
    if recorder.returncode != 0 or not out.is_file():
        last = errors.decode(errors="replace").strip().splitlines()[-1:]
        why = " ".join(last) or "no output"
        print(f"note: no boot cache in the image ({why})", file=sys.stderr)
        return None
    return out.read_bytes()


class _Stdlib:
    """Finds standard-library modules in the runtime root and closes over their imports."""

    def __init__(self, root: Path, arch: Arch) -> None:
        self.lib = root / STDLIB
        self.dynload = self.lib / "lib-dynload"
        self.suffix = f".cpython-311-{arch.triplet}.so"
        self.files: dict[str, Path] = {}

    def locate(self, name: str) -> Path | None:
        parts = name.split(".")
        base = self.lib.joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
        if len(parts) == 1:
            so = self.dynload / f"{name}{self.suffix}"
            if so.is_file():
                return so
        return None

    def add(self, names: Iterable[str]) -> None:
        import ast

        from mirage.core.build import _imports, _strip_type_checking

        todo = list(names)
        while todo:
            name = todo.pop()
            if name in self.files:
                continue
            path = self.locate(name)
            if path is None:
                continue  # built into the interpreter, or not a stdlib module
            self.files[name] = path
            parts = name.split(".")
            todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
            if path.suffix == ".py":
                # Imports written anywhere in the module, functions included, but only
                # within its own package (concurrent.futures imports .thread on first
                # use): the trace saw the module-level imports already, and following
                # every lazy import across packages would pull in half the library.
                tree = _strip_type_checking(ast.parse(path.read_bytes(), str(path)))
                is_package = path.name == "__init__.py"
                top = parts[0]
                todo.extend(n for n in _imports(tree, name, is_package) if n.split(".")[0] == top)


_WRAPPERS = {"_ssl": ("ssl",)}  # extension -> the modules that are only its wrappers
_SKIP_STDLIB = ("test", "idlelib", "tkinter", "turtledemo", "lib2to3", "ensurepip", "pydoc_data")


_TLS_TRACE_MODULES = (
    "mirage.tls",
    "mirage.tls._config",
    "mirage.tls._connection",
    "mirage.tls.flow",
    "mirage.tls.stack",
    "cryptography.hazmat.bindings._rust",
)


def _wants_tls(ctx: ArtifactContext, app_names: set[str]) -> bool:
    """Whether the application uses mirage-tls: it requires the distribution (mirage-http
    imports mirage-tls only when HTTPS is asked for, so no import shows it)."""
    requires = [*ctx.plan.requires, *(r for d in ctx.plan.devices for r in d.requires)]
    named = any(re.match(r"mirage-tls(?![\w.-])", r.strip()) for r in requires)
    return named or "mirage.tls" in app_names


def _package_files(name: str) -> list[tuple[str, Path]] | None:
    """``(path under /app, file)`` for every module file of the installed package or
    module ``name`` (as the build's interpreter finds it), or None if it is missing."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    origin = Path(spec.origin)
    if spec.submodule_search_locations is None:
        return [(origin.name, origin)]
    files = []
    for location in spec.submodule_search_locations:
        base = Path(location)
        prefix = Path(*name.split("."))
        for path in sorted(base.rglob("*")):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            if path.suffix == ".py" or path.name.endswith(".so"):
                files.append(((prefix / path.relative_to(base)).as_posix(), path))
    return files


def _tls_extras(
    ctx: ArtifactContext, arch: Arch, app_names: set[str]
) -> list[tuple[str, Path]] | str:
    """The files HTTPS needs beyond the application's own modules: mirage-tls (loaded
    by mirage-http only when asked for) and ``cryptography`` with its ``_cffi_backend``,
    as the build's own environment has them (the import trace runs on these). A
    manylinux wheel carries its own OpenSSL, so the compiled code needs only libc and
    libgcc_s from the runtime. Debian's python3-cryptography (38.0) is too old for
    mirage-tls, which validates chains with ``cryptography.x509.verification``
    (cryptography 42 and later). For an image of another architecture,
    :func:`_for_arch` maps these files to that architecture's wheels.

    A list of files, or (the application does not use TLS: an empty list) or a
    note saying why HTTPS was left out."""
    if not _wants_tls(ctx, app_names):
        return []
    files: list[tuple[str, Path]] = []
    for name in ("mirage.tls", "cryptography", "_cffi_backend"):
        found = _package_files(name)
        if found is None:
            return f"mirage-tls (the build's environment has no {name})"
        files.extend((rel, path) for rel, path in found if not rel.endswith("_plugin.py"))
    return files


def _top(rel: str) -> str:
    """The top-level module a file under /app belongs to."""
    return rel.split("/", maxsplit=1)[0].split(".", maxsplit=1)[0]


def _wheel_files(folder: Path, top: str) -> list[tuple[str, Path]]:
    """The module files (``.py`` and ``.so``) of the top-level module ``top`` in an
    unpacked wheel: the package folder, or the single module file."""
    package = folder / top
    if package.is_dir():
        return [
            (path.relative_to(folder).as_posix(), path)
            for path in sorted(package.rglob("*"))
            if path.is_file()
            and "__pycache__" not in path.parts
            and (path.suffix == ".py" or path.name.endswith(".so"))
        ]
    return [
        (path.name, path)
        for path in sorted(folder.glob(f"{top}.*"))
        if path.name == f"{top}.py" or path.name.endswith(".so")
    ]


def _for_arch(
    files: list[tuple[str, Path]], arch: Arch, log: list[str] | None = None
) -> list[tuple[str, Path]] | str:
    """``files`` (from the build's environment) for an image of ``arch``: each
    top-level package holding compiled code is replaced, as a whole, by the same
    package from ``arch``'s manylinux wheel of the distribution (at the installed
    version) that ``pip download`` fetches and the cache keeps; pure Python stays.
    A note saying why HTTPS was left out if a wheel cannot be had."""
    import importlib.metadata
    import platform

    from ._wheels import fetch_wheel, unpack_wheel

    if platform.machine() == arch.name:
        return files
    compiled = sorted({_top(rel) for rel, _ in files if rel.endswith(".so")})
    owners = importlib.metadata.packages_distributions()
    result = [(rel, path) for rel, path in files if _top(rel) not in compiled]
    major, minor = PY.removeprefix("python").split(".")
    python = (int(major), int(minor))
    for top in compiled:
        dists = owners.get(top, [])
        if len(dists) != 1:
            return f"mirage-tls (no single distribution holds {top} in the build's environment)"
        version = importlib.metadata.version(dists[0])
        try:
            folder = unpack_wheel(fetch_wheel(dists[0], version, arch.name, python, log))
        except MirageError as exc:
            debian = _debian_module(top, arch, log)
            if debian is None:
                return f"mirage-tls ({exc.message})"
            result.append(debian)
            continue
        found = _wheel_files(folder, top)
        if not any(rel.endswith(".so") for rel, _ in found):
            return f"mirage-tls (the {arch.name} wheel of {dists[0]} {version} has no {top})"
        result.extend(found)
    return result


DEBIAN_MODULES = {"_cffi_backend": "python3-cffi-backend"}
"""Compiled modules that have no wheel for every architecture (cffi publishes none for
armv7l), and the Debian package that holds the module for the runtime's CPython."""


def _debian_module(top: str, arch: Arch, log: list[str] | None) -> tuple[str, Path] | None:
    """``(file under /app, file)`` of the extension module ``top`` from its Debian
    package for ``arch`` (:data:`DEBIAN_MODULES`), or None where there is none. The
    module's version is Debian's: bookworm's ``_cffi_backend`` is 1.15, which
    cryptography's bindings (built with cffi 2) load."""
    from ._debs import fetch, unpack

    package = DEBIAN_MODULES.get(top)
    if package is None:
        return None
    try:
        root = unpack(fetch([package], arch.deb, log))
    except MirageError:
        return None
    name = f"{top}.cpython-311-{arch.triplet}.so"
    path = root / "usr" / "lib" / "python3" / "dist-packages" / name
    return (name, path) if path.is_file() else None


def _kernel_modules(root: Path, version: str, wanted: Iterable[str]) -> list[Path]:
    """``wanted`` and their dependencies (from ``depends=`` in .modinfo), deps first."""
    base = root / "lib" / "modules" / version
    by_name = {p.name.split(".")[0].replace("-", "_"): p for p in base.rglob("*.ko")}
    order: list[Path] = []

    def visit(name: str) -> None:
        path = by_name.get(name.replace("-", "_"))
        if path is None or path in order:
            return  # built into the kernel
        match = re.search(rb"\0depends=([^\0]*)\0", b"\0" + path.read_bytes())
        for dep in filter(None, (match.group(1).decode().split(",") if match else [])):
            visit(dep)
        order.append(path)

    for name in wanted:
        visit(name)
    return order


def _bundle_bytecode(bytecode: dict[str, tuple[str, bytes]]) -> dict[str, tuple[bool, str, bytes]]:
    """Takes out of ``bytecode`` (path -> (folder, .pyc)) the modules that go into the
    bundle and returns them as :func:`mirage.vm._bundle.pack` wants them. What stays
    behind stays files: :data:`BYTECODE_ON_DISK`, and a name found in two folders
    (an application module named as a standard-library one), which the path decides."""
    found: dict[str, list[str]] = {}
    for path, (folder, _data) in bytecode.items():
        name, _ = _module_name(path.removeprefix(folder + "/"))
        found.setdefault(name, []).append(path)
    bundled: dict[str, tuple[bool, str, bytes]] = {}
    for name, paths in found.items():
        if len(paths) > 1 or name.split(".")[0] in BYTECODE_ON_DISK:
            continue
        folder, data = bytecode.pop(paths[0])
        is_package = _module_name(paths[0].removeprefix(folder + "/"))[1]
        bundled[name] = (is_package, "/" + paths[0], data[16:])  # code after the header
    return bundled


def build_initramfs(
    ctx: ArtifactContext,
    arch: Arch,
    root: Path,
    kernel_version: str,
    *,
    network: bool,
    out: Path,
    console: str | None = None,
    own_stack: bool = False,
    kernel_modules: Iterable[str] = (),
    disk: bool = False,
    nic_wait: float = 0,
) -> Image:
    """The initramfs for ``ctx``'s application. ``network``: the NIC's kernel modules
    go in and ``/init`` brings the NIC up; ``own_stack``: the application's own
    TCP/IP stack takes the NIC over (``/init`` gives the kernel no address on it and
    turns off receive offloads, so that frames arrive as they were on the wire).
    ``kernel_modules``: more modules to load at boot (with their dependencies);
    ``disk``: ``/init`` links the first disk to ``/dev/disk0``; ``nic_wait``: seconds
    ``/init`` waits for a NIC that its driver finds late."""
    main = ctx.gen_dir.parent / "main.py"
    main.write_text(ctx.main_source)
    init_source = (Path(__file__).parent / "_init.py").read_text()
    init_script = ctx.gen_dir.parent / "vm_init.py"
    init_script.write_text(init_source)

    app = collect_modules(main, ctx.search_path)
    compiled = [m for m in app if m.path.suffix != ".py"]
    if compiled:
        raise MirageError(
            "the virtio target cannot carry compiled extension modules built for the host:"
            f" {', '.join(sorted(m.name for m in compiled))}",
            hint="use pure-Python implementations (their fallbacks) in VM images",
        )
    app_names = {m.name for m in app}
    # Trace against the application as the image holds it: only its own modules on the
    # path (the interpreter runs isolated, without site-packages).
    staged = ctx.gen_dir.parent / "vm-app"
    shutil.rmtree(staged, ignore_errors=True)
    for module in app:
        target = staged / module.arcname
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(module.path, target)
    extras = _tls_extras(ctx, arch, app_names)
    scripts = [main, init_script]
    if isinstance(extras, list) and extras:
        for rel, path in extras:
            target = staged / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.symlink_to(path)
        tls_trace = ctx.gen_dir.parent / "vm_trace_tls.py"
        tls_trace.write_text(
            "import importlib\n"
            f"for name in {sorted(_TLS_TRACE_MODULES)!r}:\n"
            "    importlib.import_module(name)\n"
        )
        scripts.append(tls_trace)
    recorder = _start_recording(scripts, [staged], ctx.gen_dir.parent / "vm-boot.cache")
    try:
        # What the TLS trace uses is used only by an application serving TLS.
        traced, unused = trace(scripts, [staged], watched=2)
    except BaseException:
        recorder.kill()
        recorder.communicate()
        raise
    boot_cache = _recorded(recorder, ctx.gen_dir.parent / "vm-boot.cache")
    if isinstance(extras, list) and extras:
        # The trace ran on the build's own (compiled) packages; the image takes its own.
        extras = _for_arch(extras, arch)
    stdlib = _Stdlib(root, arch)
    stdlib.add(n for n in traced if n not in app_names and n.split(".")[0] not in ("mirage",))
    mode = dict(ctx.plan.keys).get("vm-bytecode") or "bundle"  # --vm-bytecode
    if mode == "bundle":
        stdlib.add(["mmap"])  # the bundle's importer maps its file (reads it without)
    elif mode != "files":
        raise MirageError(
            f"unknown bytecode layout {mode!r}", hint="--vm-bytecode is bundle or files"
        )
    for name in [n for n in stdlib.files if n.split(".")[0] in _SKIP_STDLIB]:
        del stdlib.files[name]

    buf = io.BytesIO()
    cpio = CpioWriter(buf)
    made: set[str] = set()

    def directory(path: str) -> None:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if sub and sub not in made:
                made.add(sub)
                cpio.directory(sub)

    def file(path: str, data: bytes, mode: int = 0o644) -> None:
        directory(path.rsplit("/", 1)[0]) if "/" in path.strip("/") else None
        cpio.file(path, data, mode)

    # path -> (folder on sys.path, .pyc): written as files or bundled at the end.
    bytecode: dict[str, tuple[str, bytes]] = {}

    def pyc(folder: str, rel: str, source: bytes) -> None:
        path = f"{folder}/{rel[:-3]}.pyc"
        bytecode[path] = (folder, _pyc(source, f"/{folder}/{rel}"))
        directory(path.rsplit("/", 1)[0])

    def present(path: str) -> bool:
        return cpio.has(path) or path in bytecode

    for name in ("dev", "proc", "sys", "tmp", "app", "etc", "lib/modules"):
        directory(name)
    for name, major, minor in (
        ("console", 5, 1),
        ("null", 1, 3),
        ("urandom", 1, 9),
        ("random", 1, 8),
        ("tty", 5, 0),
        ("zero", 1, 5),
    ):
        cpio.char_device(f"dev/{name}", major, minor)

    # The interpreter and the shared libraries, found from DT_NEEDED. An extension
    # module that only the static closure reached (an optional import such as ssl)
    # and whose libraries the runtime lacks is left out; one the trace reached is not.
    lib_dirs = [root / "lib" / arch.triplet, root / "usr" / "lib" / arch.triplet]

    def closure(data: bytes) -> dict[str, Path] | str:
        """The libraries ``data`` needs, transitively, or the name of a missing one."""
        try:
            return library_closure([data], lib_dirs)
        except ElfError as exc:
            raise MirageError(f"cannot read a runtime binary: {exc}") from None

    left_out: list[str] = []
    if isinstance(extras, str):
        left_out.append(extras)
        extras = []
    python = root / "usr" / "bin" / PY
    python_data = python.read_bytes()
    libraries = closure(python_data)
    if isinstance(libraries, str):
        raise MirageError(f"the runtime's {PY} needs {libraries}, which no runtime package holds")
    file(f"usr/bin/{PY}", python_data, 0o755)
    for name, path in sorted(stdlib.files.items()):
        if path.suffix != ".so":
            continue
        libs = closure(path.read_bytes())
        if isinstance(libs, str):
            # Optional to the standard library (asyncio imports ssl if it can): left out,
            # and said, since an application that really uses it fails at run time.
            left_out.append(f"{name} (needs {libs})")
            del stdlib.files[name]
            continue
        libraries.update(libs)
    # A module whose extension was left out cannot import: leave it out too, so that
    # the optional import (asyncio's "import ssl") fails at once, not after loading it.
    for extension, wrappers in _WRAPPERS.items():
        if extension not in stdlib.files:
            for wrapper in wrappers:
                stdlib.files.pop(wrapper, None)
    for soname, path in sorted(libraries.items()):
        file(f"lib/{arch.triplet}/{soname}", path.read_bytes(), 0o755)
    loader_name = Path(arch.loader).name
    loader = next((d / loader_name for d in lib_dirs if (d / loader_name).exists()), None)
    if loader is None:
        raise MirageError(f"the runtime has no ELF loader {loader_name}")
    loader_path = arch.loader.lstrip("/")
    in_lib = f"lib/{arch.triplet}/{loader_name}"
    if not cpio.has(loader_path):
        if cpio.has(in_lib):  # libc's DT_NEEDED brought it in: the same file
            directory(loader_path.rsplit("/", 1)[0])
            cpio.symlink(loader_path, f"/{in_lib}")
        else:
            file(loader_path, loader.resolve().read_bytes(), 0o755)

    # The standard library, as sourceless bytecode next to where each .py would be.
    for _name, path in sorted(stdlib.files.items()):
        rel = path.relative_to(root).as_posix()
        if path.suffix == ".py":
            pyc(STDLIB, rel.removeprefix(STDLIB + "/"), path.read_bytes())
        else:
            file(rel, path.read_bytes(), 0o755)

    # The application and its devices.
    for module in app:
        pyc("app", module.arcname, module.path.read_bytes())
    pyc("app", "main.py", ctx.main_source.encode())
    # HTTPS: mirage-tls and the compiled cryptography it runs on (see _tls_extras).
    for rel, path in extras:
        if present(f"app/{rel[:-3]}.pyc") or present(f"app/{rel}"):
            continue  # the application's module scan found it already
        if rel.endswith(".py"):
            pyc("app", rel, path.read_bytes())
        else:
            data = path.read_bytes()
            libs = closure(data)
            if isinstance(libs, str):
                raise MirageError(
                    f"{rel} (for HTTPS) needs {libs}, which no runtime package holds",
                    hint="pass a runtime with that library (--vm-runtime)",
                )
            libraries.update(libs)
            # Wheels keep their symbol tables (3 MiB of cryptography's 14): not loaded.
            file(f"app/{rel}", without_sections(data), 0o755)
    tls_libraries = {k: v for k, v in libraries.items() if not cpio.has(f"lib/{arch.triplet}/{k}")}
    for soname, path in sorted(tls_libraries.items()):
        file(f"lib/{arch.triplet}/{soname}", path.read_bytes(), 0o755)

    wanted = [*(NET_MODULES if network else ()), *kernel_modules]
    modules = _kernel_modules(root, kernel_version, wanted)
    for ko in modules:
        file(f"lib/modules/{ko.name}", ko.read_bytes())
    config = {
        "name": ctx.plan.name,
        "modules": [f"/lib/modules/{ko.name}" for ko in modules],
        "nics": ["eth0"] if network else [],
        "nic_wait": nic_wait,
        "own_stack": own_stack,
        "disk": disk,
        "console": console,
        "finit_module": arch.finit_module,
        "reboot": arch.reboot,
    }
    file("etc/mirage.json", json.dumps(config, indent=1).encode())
    if boot_cache is not None:
        file("etc/mirage.cache", boot_cache)
    # /init imports its code, compiled here: only its few lines are compiled at boot.
    pyc(STDLIB, f"{INIT_MODULE}.py", init_source.encode())
    lines = [f"import {INIT_MODULE}", f"{INIT_MODULE}.boot()"]
    if mode == "bundle":
        bundled = _bundle_bytecode(bytecode)
        file(_bundle.PATH.lstrip("/"), _bundle.pack(bundled, unused))
        finder = (Path(__file__).parent / "_bundle.py").read_bytes()
        pyc(STDLIB, f"{BUNDLE_MODULE}.py", finder)
        lines[:0] = [f"import {BUNDLE_MODULE}", f"{BUNDLE_MODULE}.install()"]
    for arcname, (_folder, data) in sorted(bytecode.items()):
        file(arcname, data)
    file("init", "\n".join([f"#!/usr/bin/{PY} -IS", *lines, ""]).encode(), 0o755)
    cpio.close()

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buf.getvalue())
    compress_initrd(out, dict(ctx.plan.keys).get("vm-compress"), arch)  # --vm-compress
    return Image(
        kernel=Path(),
        initrd=out,
        files=len(made),
        stdlib_modules=len(stdlib.files),
        app_modules=len(app),
        kernel_modules=[ko.name for ko in modules],
        size=out.stat().st_size,
        left_out=left_out,
    )
