"""Check that each built wheel installs alone and that its plugins load.

For every package of the repository, in a fresh virtual environment:

1. ``pip install --no-deps --no-index --find-links DIR`` the package's wheel and the
   wheels of its in-repo dependencies, all taken from DIR (never from an index);
2. ``pip install`` the third-party requirements of those wheels (``pluggy``...) as
   usual, then ``pip check``;
3. load the registry (``mirage.core.plugins.load_registry()``) and require that each
   of the package's entry points in the ``mirage`` group loaded, registered
   something, and that no plugin failed;
4. run ``mirage plugins`` and require exit status 0 and a line for each entry point.

Prints OK or FAIL per package; the exit status is 1 if any package failed.
"""

from __future__ import annotations

import argparse
import configparser
import email.parser
import os
import subprocess
import sys
import tempfile
import textwrap
import venv
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packages import ROOT, Package, PackageError, find_package, load_packages, requirement_name

__all__ = ["Check", "Wheel", "check_package", "main", "read_wheel"]

# Run inside the fresh environment: argv[1] is the distribution, argv[2:] its entry points.
LOAD_CHECK = textwrap.dedent(
    """
    import sys
    from mirage.core.plugins import load_registry

    dist, wanted = sys.argv[1], sys.argv[2:]
    registry = load_registry()
    problems = [f"{f.plugin.describe()} failed: {f.error}" for f in registry.failures]
    loaded = {p.name: p for p in registry.plugins}
    for name in wanted:
        info = loaded.get(name)
        if info is None:
            problems.append(f"entry point {name!r} did not load")
        elif info.dist != dist:
            problems.append(f"entry point {name!r} comes from {info.dist!r}, not {dist!r}")
        # A plugin may register nothing (a library such as mirage-http only announces
        # itself); that it loaded with no failure is what counts.
    if problems:
        sys.exit("; ".join(problems))
    print(
        ", ".join(
            f"{n}: {sorted(registry.registered_by(loaded[n])) or 'nothing (a library)'}"
            for n in wanted
        )
    )
    """
)


@dataclass(frozen=True)
class Wheel:
    """What a wheel says about itself."""

    path: Path
    name: str
    version: str
    requires: tuple[str, ...]  # Requires-Dist without extras
    entry_points: tuple[str, ...]  # names in the mirage group


def read_wheel(path: Path) -> Wheel:
    """Read the metadata and ``mirage`` entry points of a wheel file."""
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        metadata_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(zf.read(metadata_name).decode())
        entry_points: tuple[str, ...] = ()
        ep_name = metadata_name.replace("METADATA", "entry_points.txt")
        if ep_name in names:
            parser = configparser.ConfigParser(delimiters=("=",))
            parser.optionxform = str  # type: ignore[assignment,method-assign]
            parser.read_string(zf.read(ep_name).decode())
            if parser.has_section("mirage"):
                entry_points = tuple(sorted(parser.options("mirage")))
    requires = tuple(
        r
        for r in metadata.get_all("Requires-Dist") or []
        if "extra ==" not in r.replace('"', "").replace("'", "")
    )
    return Wheel(path, str(metadata["Name"]), str(metadata["Version"]), requires, entry_points)


@dataclass(frozen=True)
class Check:
    package: Package
    ok: bool
    detail: str


def _wheel_for(package: Package, dist: Path) -> Path | None:
    wheels = sorted(dist.glob(f"{package.wheel_stem}-{package.version}-*.whl"))
    return wheels[-1] if wheels else None


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.pop("MIRAGE_DISABLE_PLUGINS", None)
    env["PYTHONNOUSERSITE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(argv: list[str], cwd: Path) -> tuple[bool, str]:
    result = subprocess.run(argv, cwd=cwd, env=_env(), capture_output=True, text=True, check=False)
    return result.returncode == 0, (result.stdout + result.stderr).strip()


def check_package(package: Package, packages: Sequence[Package], dist: Path) -> Check:
    """Install ``package``'s wheel (and its in-repo dependencies' wheels from ``dist``)
    into a fresh virtual environment and check that its plugins load."""
    by_name = {p.name: p for p in packages}
    needed: list[Package] = []

    def need(p: Package) -> None:
        for dep in p.deps:
            need(by_name[dep])
        if p not in needed:
            needed.append(p)

    need(package)
    wheels: list[Wheel] = []
    for p in needed:
        path = _wheel_for(p, dist)
        if path is None:
            return Check(
                package, False, f"no wheel of {p.name} {p.version} in {dist} (run build_all.py)"
            )
        wheels.append(read_wheel(path))
    in_repo = {w.name.lower().replace("_", "-") for w in wheels}
    third_party = sorted(
        {r for w in wheels for r in w.requires if requirement_name(r) not in in_repo}
    )
    entry_points = wheels[-1].entry_points
    with tempfile.TemporaryDirectory(prefix="check-wheel-") as tmp:
        work = Path(tmp)
        env_dir = work / "venv"
        venv.EnvBuilder(with_pip=True).create(env_dir)
        python = str(env_dir / "bin" / "python")
        pip = [python, "-m", "pip", "install", "--quiet"]
        steps: list[tuple[str, list[str]]] = [
            (
                "install wheels",
                [*pip, "--no-deps", "--no-index", "--find-links", str(dist)]
                + [str(w.path) for w in wheels],
            ),
        ]
        if third_party:
            steps.append(("install requirements", [*pip, *third_party]))
        steps.append(("pip check", [python, "-m", "pip", "check"]))
        steps.append(("load plugins", [python, "-c", LOAD_CHECK, package.name, *entry_points]))
        steps.append(("mirage plugins", [str(env_dir / "bin" / "mirage"), "plugins"]))
        loaded = ""
        for label, argv in steps:
            ok, output = _run(argv, work)
            if not ok:
                return Check(package, False, f"{label} failed:\n{output}")
            if label == "load plugins":
                loaded = output
            if label == "mirage plugins":
                lines = output.splitlines()
                for name in entry_points:
                    if not any(line.startswith(f"{name}: {package.name} ") for line in lines):
                        return Check(
                            package, False, f"'mirage plugins' does not list {name!r}:\n{output}"
                        )
                if "failed to load" in output:
                    return Check(package, False, f"'mirage plugins' reports:\n{output}")
    return Check(package, True, loaded or "no entry points")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Install each built wheel into a fresh virtual environment (its in-repo"
        " dependencies from the same directory only) and check that its plugins load."
    )
    parser.add_argument(
        "packages", nargs="*", metavar="PACKAGE", help="check only these (default: all)"
    )
    parser.add_argument(
        "--dist",
        type=Path,
        default=ROOT / "dist",
        help="where the wheels are (default: dist/, as written by build_all.py)",
    )
    args = parser.parse_args(argv)
    try:
        packages = load_packages(ROOT)
        selected = packages
        if args.packages:
            wanted = {find_package(packages, name).name for name in args.packages}
            selected = [p for p in packages if p.name in wanted]
    except PackageError as exc:
        print(f"check_wheels: error: {exc}", file=sys.stderr)
        return 1
    dist: Path = args.dist.resolve()
    failed = 0
    for package in selected:
        check = check_package(package, packages, dist)
        if check.ok:
            print(f"OK    {package.name} {package.version}  {check.detail}")
        else:
            failed += 1
            print(f"FAIL  {package.name} {package.version}")
            print(textwrap.indent(check.detail, "      "))
    print(f"{len(selected) - failed} of {len(selected)} wheels OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
