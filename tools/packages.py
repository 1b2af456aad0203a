"""The packages of this repository: names, versions and in-repo dependencies.

A package is a directory under ``packages/`` with a ``pyproject.toml``. Its in-repo
dependencies are the names in ``[project].dependencies`` that are other packages of
the repository. :func:`load_packages` returns them in dependency order (each package
after the packages it depends on, ties by name); the other tools import this module.

Run as a script, it prints that order with versions and dependencies.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ROOT",
    "Package",
    "PackageError",
    "dependents",
    "find_package",
    "load_packages",
    "normalize",
    "read_package",
    "requirement_name",
]

ROOT = Path(__file__).resolve().parent.parent
"""The repository this file belongs to."""

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


class PackageError(Exception):
    """A package cannot be read, or the packages depend on each other in a cycle."""


def normalize(name: str) -> str:
    """The PEP 503 form of a distribution name (``Mirage_Core`` is ``mirage-core``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """The normalized distribution name of a PEP 508 requirement string."""
    match = _NAME.match(requirement)
    if match is None:
        raise PackageError(f"cannot read the requirement {requirement!r}")
    return normalize(match.group(1))


@dataclass(frozen=True)
class Package:
    """One distribution of the repository."""

    name: str
    version: str
    path: Path
    requires: tuple[str, ...]
    """All of ``[project].dependencies``, as written."""
    deps: tuple[str, ...] = ()
    """The normalized names of the in-repo packages among ``requires``."""
    entry_points: tuple[str, ...] = ()
    """The names of its entry points in the ``mirage`` group."""

    @property
    def pyproject(self) -> Path:
        return self.path / "pyproject.toml"

    @property
    def changelog(self) -> Path:
        return self.path / "CHANGELOG.md"

    @property
    def wheel_stem(self) -> str:
        """How wheels and sdists spell the name (``mirage_core``)."""
        return self.name.replace("-", "_")


def read_package(path: Path) -> Package:
    """Read one package directory (``deps`` is left empty: see :func:`load_packages`)."""
    pyproject = path / "pyproject.toml"
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PackageError(f"{pyproject}: {exc}") from None
    project = data.get("project")
    if not isinstance(project, dict) or "name" not in project or "version" not in project:
        raise PackageError(f"{pyproject}: [project] needs a name and a version")
    requires = tuple(str(r) for r in project.get("dependencies", []))
    entry_points = project.get("entry-points", {}).get("mirage", {})
    return Package(
        name=normalize(str(project["name"])),
        version=str(project["version"]),
        path=path,
        requires=requires,
        entry_points=tuple(sorted(entry_points)),
    )


def load_packages(root: Path = ROOT) -> list[Package]:
    """Every package under ``root/packages``, each after its in-repo dependencies."""
    found: dict[str, Package] = {}
    for pyproject in sorted((root / "packages").glob("*/pyproject.toml")):
        package = read_package(pyproject.parent)
        if package.name in found:
            raise PackageError(
                f"{package.path} and {found[package.name].path} are both {package.name}"
            )
        found[package.name] = package
    for name, package in list(found.items()):
        deps = sorted({d for d in map(requirement_name, package.requires) if d in found})
        found[name] = Package(
            package.name,
            package.version,
            package.path,
            package.requires,
            tuple(deps),
            package.entry_points,
        )
    return _topological(found)


def _topological(packages: dict[str, Package]) -> list[Package]:
    ordered: list[Package] = []
    done: set[str] = set()
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(name) :], name])
            raise PackageError(f"the packages depend on each other in a cycle: {cycle}")
        visiting.append(name)
        for dep in packages[name].deps:
            visit(dep)
        visiting.pop()
        done.add(name)
        ordered.append(packages[name])

    for name in sorted(packages):
        visit(name)
    return ordered


def find_package(packages: Sequence[Package], wanted: str) -> Package:
    """The package named ``wanted`` (a distribution name or its directory's name)."""
    for package in packages:
        if package.name == normalize(wanted) or package.path.name == wanted:
            return package
    known = ", ".join(p.name for p in packages) or "none"
    raise PackageError(f"no package {wanted!r} in this repository (packages: {known})")


def dependents(packages: Sequence[Package], names: Iterable[str]) -> list[Package]:
    """The packages named and every package that depends on them, in dependency order."""
    selected = {normalize(n) for n in names}
    for package in packages:  # dependency order: a package's deps are already decided
        if any(dep in selected for dep in package.deps):
            selected.add(package.name)
    return [p for p in packages if p.name in selected]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="List the packages of the repository in dependency order, with"
        " their versions and in-repo dependencies."
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--names", action="store_true", help="print only the names")
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="repository root (default: this repository)"
    )
    args = parser.parse_args(argv)
    try:
        packages = load_packages(args.root)
    except PackageError as exc:
        print(f"packages: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        rows = [
            {
                "name": p.name,
                "version": p.version,
                "path": p.path.relative_to(args.root).as_posix(),
                "deps": list(p.deps),
                "entry_points": list(p.entry_points),
            }
            for p in packages
        ]
        print(json.dumps(rows, indent=2))
    elif args.names:
        for package in packages:
            print(package.name)
    else:
        width = max((len(p.name) for p in packages), default=0)
        for package in packages:
            deps = ", ".join(package.deps) or "-"
            print(f"{package.name:<{width}}  {package.version:<8}  {deps}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
