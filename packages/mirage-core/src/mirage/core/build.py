"""What targets use to seal artifacts.

- :class:`BuildContext` is what an implementation's ``build`` step receives.
- :func:`collect_modules` walks the imports of the generated ``main.py`` and returns
  exactly the modules it reaches outside the standard library: a target seals those,
  and nothing from packages the plan does not use.
- :func:`write_zipapp` writes a zipapp with those modules and their compiled bytecode.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import io
import os
import stat
import sys
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._plan import Plan

__all__ = ["ArtifactContext", "BuildContext", "ModuleFile", "collect_modules", "write_zipapp"]


@dataclass(frozen=True)
class BuildContext:
    """Given to an implementation's ``build`` step.

    ``gen_dir`` is on the artifact's import path: a step writes modules there (the
    crunch store writes its files as a module) and returns the ``connect`` keyword
    arguments that refer to them, as ``{"kwarg": "module:attribute"}``.
    """

    project_dir: Path
    gen_dir: Path
    device_id: str
    target: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, order=True)
class ModuleFile:
    """One module to seal: ``name`` as imported, ``arcname`` inside the artifact."""

    name: str
    path: Path
    arcname: str
    is_package: bool = False


def _stdlib() -> frozenset[str]:
    return frozenset(sys.stdlib_module_names) | frozenset(sys.builtin_module_names)


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterable[str]:
    """Absolute names of the modules a module imports (relative imports resolved)."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base_parts = parts[: len(parts) - node.level + 1] if node.level > 1 else parts
                base = ".".join(base_parts)
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target:
                yield target
                # "from package import submodule" imports a module too.
                for alias in node.names:
                    if alias.name != "*":
                        yield f"{target}.{alias.name}"


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
    )


def _strip_type_checking(tree: ast.Module) -> ast.Module:
    class Strip(ast.NodeTransformer):
        def visit_If(self, node: ast.If) -> Any:
            if _is_type_checking_block(node):
                return node.orelse or None
            return self.generic_visit(node)

    return Strip().visit(tree)  # type: ignore[no-any-return]


def collect_modules(
    entry: Path, search_path: Iterable[Path] = (), *, exclude: Iterable[str] = ()
) -> list[ModuleFile]:
    """The non-standard-library modules reached from the script ``entry``.

    Imports under ``if TYPE_CHECKING:`` are not followed; an import that cannot be
    found (an optional accelerator, a guarded import) is skipped. Compiled extension
    modules are returned too: a target decides what to do with them.
    """
    stdlib = _stdlib()
    excluded = tuple(exclude)
    extra = [str(p) for p in search_path]
    saved = list(sys.path)
    sys.path[:0] = extra
    try:
        found: dict[str, ModuleFile] = {}
        todo: list[tuple[str, Path, bool]] = [("__main__", entry, False)]
        while todo:
            name, path, is_package = todo.pop()
            if path.suffix != ".py":
                continue
            try:
                tree = ast.parse(path.read_bytes(), str(path))
            except (SyntaxError, ValueError):
                continue
            tree = _strip_type_checking(tree)
            for imported in _imports(tree, name, is_package):
                parts = imported.split(".")
                for i in range(1, len(parts) + 1):
                    sub = ".".join(parts[:i])
                    if sub in found or parts[0] in stdlib or sub.startswith(excluded):
                        continue
                    spec = _find_spec(sub)
                    if spec is None:
                        break
                    module_file = _module_file(sub, spec)
                    if module_file is None:
                        # A namespace package: nothing to seal, look into its children.
                        continue
                    found[sub] = module_file
                    todo.append((sub, module_file.path, module_file.is_package))
        return sorted(found.values())
    finally:
        sys.path[:] = saved


def _find_spec(name: str) -> importlib.machinery.ModuleSpec | None:
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError, AttributeError):
        return None


def _module_file(name: str, spec: importlib.machinery.ModuleSpec) -> ModuleFile | None:
    origin = spec.origin
    if origin is None or origin in ("built-in", "frozen", "namespace"):
        return None
    path = Path(origin)
    is_package = spec.submodule_search_locations is not None
    parts = name.split(".")
    if is_package:
        arcname = "/".join(parts) + "/" + path.name
    else:
        arcname = "/".join([*parts[:-1], path.name])
    return ModuleFile(name, path, arcname, is_package)


_EPOCH = (1980, 1, 1, 0, 0, 0)


def _pyc(source: bytes, arcname: str) -> bytes:
    """Bytecode for ``source`` with an unchecked-hash header (PEP 552): zipimport
    loads it without comparing times, so start-up compiles nothing."""
    import importlib._bootstrap_external as external

    code = compile(source, arcname, "exec", dont_inherit=True, optimize=0)
    source_hash = importlib.util.source_hash(source)
    data = external._code_to_hash_pyc(code, source_hash, False)  # type: ignore[attr-defined]
    return bytes(data)


def write_zipapp(
    target: Path,
    main_source: bytes,
    modules: Iterable[ModuleFile],
    *,
    files: Mapping[str, bytes] | None = None,
    interpreter: str = "/usr/bin/env python3",
) -> int:
    """Write an executable zipapp: ``__main__.py`` plus each module's source and
    bytecode (so that start-up compiles nothing). Entries are sorted and dated
    1980-01-01, so the same plan gives the same bytes. Returns the size in bytes."""
    buf = io.BytesIO()
    buf.write(f"#!{interpreter}\n".encode())
    entries: dict[str, bytes] = {"__main__.py": main_source}
    for module in modules:
        data = module.path.read_bytes()
        entries[module.arcname] = data
        if module.path.suffix == ".py":
            # zipimport looks for "<name>.pyc" next to "<name>.py".
            entries[module.arcname + "c"] = _pyc(data, module.arcname)
    for arcname, data in (files or {}).items():
        entries[arcname] = data
    # Directory entries: zipimport needs them to find namespace packages (``mirage/``).
    directories = {
        "/".join(arcname.split("/")[:i]) + "/"
        for arcname in entries
        for i in range(1, arcname.count("/") + 1)
    }
    with zipfile.ZipFile(buf, "a", zipfile.ZIP_DEFLATED) as zf:
        for directory in sorted(directories):
            info = zipfile.ZipInfo(directory, _EPOCH)
            info.external_attr = (0o40755 << 16) | 0x10
            zf.writestr(info, b"")
        for arcname in sorted(entries):
            info = zipfile.ZipInfo(arcname, _EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, entries[arcname])
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    os.replace(tmp, target)
    return target.stat().st_size


@dataclass(frozen=True)
class ArtifactContext:
    """Given to a target's ``builder(ctx) -> list[Path]`` and ``runner(ctx, argv) -> int``.

    ``main_source`` is the generated ``main.py``; ``gen_dir`` holds the modules that
    build steps wrote; ``search_path`` is where the application's own modules are
    found (the project directory, then ``gen_dir``); artifacts go to ``dist_dir``.
    """

    plan: Plan
    project_dir: Path
    main_source: str
    gen_dir: Path
    dist_dir: Path

    @property
    def search_path(self) -> list[Path]:
        return [self.project_dir, self.gen_dir]
