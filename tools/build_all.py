"""Build every package's wheel and sdist into one directory.

Each package is built with ``python -m build --no-isolation``, so this interpreter
must have ``build`` and the packages' build backend (``poetry-core``) installed; the
packages are built in dependency order, and a table of what was built is printed.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packages import ROOT, Package, PackageError, find_package, load_packages

__all__ = ["Built", "build_package", "main"]

BUILD_REQUIREMENTS = {"build": "build", "poetry.core": "poetry-core"}


@dataclass(frozen=True)
class Built:
    package: Package
    wheel: Path | None
    sdist: Path | None
    seconds: float
    error: str = ""


def _artifacts(package: Package, out: Path) -> tuple[Path | None, Path | None]:
    stem = f"{package.wheel_stem}-{package.version}"
    wheels = sorted(out.glob(f"{stem}-*.whl"))
    sdist = out / f"{stem}.tar.gz"
    return (wheels[-1] if wheels else None), (sdist if sdist.exists() else None)


def build_package(package: Package, out: Path, python: str = sys.executable) -> Built:
    """Build one package's wheel and sdist into ``out`` (old ones of this version go)."""
    stem = f"{package.wheel_stem}-{package.version}"
    for old in [*out.glob(f"{stem}-*.whl"), *out.glob(f"{stem}.tar.gz")]:
        old.unlink()
    started = time.monotonic()
    result = subprocess.run(
        [python, "-m", "build", "--no-isolation", "--outdir", str(out), str(package.path)],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - started
    wheel, sdist = _artifacts(package, out)
    error = ""
    if result.returncode != 0:
        error = (result.stdout + result.stderr).strip() or f"exit status {result.returncode}"
    elif wheel is None or sdist is None:
        error = f"python -m build succeeded but {stem}-*.whl or {stem}.tar.gz is missing"
    return Built(package, wheel, sdist, seconds, error)


def _missing_requirements() -> list[str]:
    return [dist for module, dist in BUILD_REQUIREMENTS.items() if not _importable(module)]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _size(path: Path | None) -> str:
    return f"{path.stat().st_size / 1024:.1f} KiB" if path else "-"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Build the wheel and sdist of every package (python -m build"
        " --no-isolation, poetry-core backend) into one directory and print a table."
    )
    parser.add_argument(
        "packages", nargs="*", metavar="PACKAGE", help="build only these (default: all)"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "dist", help="output directory (default: dist/)"
    )
    args = parser.parse_args(argv)
    missing = _missing_requirements()
    if missing:
        print(
            f"build_all: error: {sys.executable} lacks {' and '.join(missing)};"
            " install them or run this script with an interpreter that has them",
            file=sys.stderr,
        )
        return 1
    try:
        packages = load_packages(ROOT)
        if args.packages:
            wanted = {find_package(packages, name).name for name in args.packages}
            packages = [p for p in packages if p.name in wanted]
    except PackageError as exc:
        print(f"build_all: error: {exc}", file=sys.stderr)
        return 1
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    results: list[Built] = []
    for package in packages:
        print(f"building {package.name} {package.version} ...", file=sys.stderr, flush=True)
        results.append(build_package(package, out))
    width = max((len(b.package.name) for b in results), default=7)
    print(f"{'package':<{width}}  {'version':<8}  {'wheel':<40}  {'size':>10}  sdist size  time")
    for built in results:
        wheel = built.wheel.name if built.wheel else "FAILED"
        print(
            f"{built.package.name:<{width}}  {built.package.version:<8}  {wheel:<40}"
            f"  {_size(built.wheel):>10}  {_size(built.sdist):>10}  {built.seconds:4.1f}s"
        )
    failed = [b for b in results if b.error]
    for built in failed:
        print(f"\n{built.package.name} failed to build:\n{built.error}", file=sys.stderr)
    print(f"{len(results) - len(failed)} of {len(results)} packages built into {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
