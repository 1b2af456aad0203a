"""Binary wheels for another architecture, cached by version.

An image for an architecture other than the build host's cannot take compiled
packages (cryptography, for HTTPS) from the build's own environment. ``pip download``
fetches the target's manylinux wheels instead; each is kept under the cache folder
with its version and tags in its name (as pip names it), so a second build downloads
nothing, and is unpacked once into a folder named after it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from mirage.core import MirageError

from ._debs import cache_dir

__all__ = ["WHEEL_ARCH", "WheelName", "fetch_wheel", "parse_wheel", "select_wheel", "unpack_wheel"]

_WHEEL = re.compile(
    r"^(?P<project>[A-Za-z0-9_.]+)-(?P<version>[^-]+)(?:-(?P<build>\d[^-]*))?"
    r"-(?P<python>[^-]+)-(?P<abi>[^-]+)-(?P<platform>[^-]+)\.whl$"
)
_MANYLINUX = re.compile(r"^manylinux_(\d+)_(\d+)_(\w+)$")
_LEGACY = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}

GLIBC = (2, 36)
"""The C library of the runtime packages (Debian 12): the newest manylinux accepted."""


@dataclass(frozen=True, slots=True)
class WheelName:
    """A wheel file's name, split (PEP 427): each tag part may hold several, '.'-joined."""

    project: str
    version: str
    pythons: tuple[str, ...]
    abis: tuple[str, ...]
    platforms: tuple[str, ...]


def _normal(project: str) -> str:
    return re.sub(r"[-_.]+", "_", project).lower()


def parse_wheel(filename: str) -> WheelName | None:
    """The parts of a wheel's file name, or None for a name that is not a wheel's."""
    match = _WHEEL.match(filename)
    if match is None:
        return None
    return WheelName(
        _normal(match["project"]),
        match["version"],
        tuple(match["python"].split(".")),
        tuple(match["abi"].split(".")),
        tuple(match["platform"].split(".")),
    )


def _platform_ok(tag: str, arch: str, glibc: tuple[int, int]) -> bool:
    match = _MANYLINUX.match(tag)
    if match is not None:
        wanted = (int(match[1]), int(match[2]))
        return match[3] == arch and wanted <= glibc
    legacy, _, machine = tag.partition("_")
    return legacy in _LEGACY and machine == arch and _LEGACY[legacy] <= glibc


def _python_ok(name: WheelName, python: tuple[int, int]) -> int | None:
    """How well the wheel's Python tags fit CPython ``python`` (higher is closer), or
    None if they do not: an exact ``cpXY-cpXY`` wheel, then the stable ABI (``abi3``,
    built for ``cpXY`` or older), then pure Python."""
    exact = f"cp{python[0]}{python[1]}"
    best: int | None = None
    for tag in name.pythons:
        for abi in name.abis:
            score: int | None = None
            if tag == exact and abi == exact:
                score = 3
            elif abi == "abi3" and tag.startswith("cp") and tag[2:].isdigit():
                minor = int(tag[3:]) if tag[2] == str(python[0]) and len(tag) > 3 else None
                if minor is not None and minor <= python[1]:
                    score = 2
            elif abi == "none" and tag in (f"py{python[0]}", "py2.py3", exact):
                score = 1
            if score is not None and (best is None or score > best):
                best = score
    return best


def select_wheel(
    filenames: list[str],
    project: str,
    version: str,
    arch: str,
    *,
    python: tuple[int, int] = (3, 11),
    glibc: tuple[int, int] = GLIBC,
) -> str | None:
    """Of ``filenames``, the wheel of ``project`` at ``version`` that CPython ``python``
    on ``arch`` (Linux, the C library ``glibc``) can load, preferring an exact ABI
    match, then the newest manylinux policy; None if there is none."""
    best: tuple[int, tuple[int, int], str] | None = None
    for filename in filenames:
        name = parse_wheel(filename)
        if name is None or name.project != _normal(project) or name.version != version:
            continue
        fit = _python_ok(name, python)
        platforms = [p for p in name.platforms if _platform_ok(p, arch, glibc)]
        if fit is None or not platforms:
            continue
        policy = max(_policy(p) for p in platforms)
        key = (fit, policy, filename)
        if best is None or key > best:
            best = key
    return best[2] if best else None


def _policy(tag: str) -> tuple[int, int]:
    match = _MANYLINUX.match(tag)
    if match is not None:
        return int(match[1]), int(match[2])
    return _LEGACY.get(tag.partition("_")[0], (0, 0))


WHEEL_ARCH = {"armv7": "armv7l"}
"""Where a wheel's platform tag names an architecture otherwise than we do."""


def _pip_platforms(arch: str, glibc: tuple[int, int]) -> list[str]:
    """Every manylinux tag a wheel for ``arch`` with the C library ``glibc`` may carry
    (pip takes the best it finds: armv7l wheels, for one, are manylinux_2_31)."""
    minors = range(glibc[1], 16, -1)
    return [f"manylinux_{glibc[0]}_{minor}_{arch}" for minor in minors] + [f"manylinux2014_{arch}"]


def fetch_wheel(
    project: str,
    version: str,
    arch: str,
    python: tuple[int, int] = (3, 11),
    log: list[str] | None = None,
) -> Path:
    """The wheel of ``project`` ``version`` for ``arch``, downloaded by pip unless cached."""
    arch = WHEEL_ARCH.get(arch, arch)
    folder = cache_dir() / "wheels"
    folder.mkdir(parents=True, exist_ok=True)
    cached = select_wheel(
        [p.name for p in folder.glob("*.whl")], project, version, arch, python=python
    )
    if cached is not None:
        return folder / cached
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:"]
    for platform in _pip_platforms(arch, GLIBC):
        argv += ["--platform", platform]
    argv += ["--python-version", f"{python[0]}.{python[1]}", "--implementation", "cp"]
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        argv += ["--no-deps", "-d", tmp, f"{project}=={version}"]
        if log is not None:
            log.append(f"{project} {version} ({arch} wheel)")
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        got = select_wheel(
            [p.name for p in Path(tmp).glob("*.whl")], project, version, arch, python=python
        )
        if result.returncode != 0 or got is None:
            lines = (result.stderr or result.stdout).strip().splitlines()
            raise MirageError(
                f"no {arch} wheel of {project} {version} for CPython {python[0]}.{python[1]}"
                + (f": {lines[-1]}" if lines else ""),
                hint="pip must reach a package index (or put the wheel in the cache folder"
                f" {folder})",
            )
        shutil.move(str(Path(tmp) / got), folder / got)
    return folder / got


def unpack_wheel(wheel: Path) -> Path:
    """The folder holding ``wheel``'s files (unpacked once, next to the cache's wheels)."""
    target = wheel.parent / "unpacked" / wheel.name.removesuffix(".whl")
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=target.parent, prefix=".partial-"))
    try:
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.infolist():
                path = Path(member.filename)
                if path.is_absolute() or ".." in path.parts:
                    raise MirageError(f"{wheel.name} holds an unsafe path {member.filename!r}")
            archive.extractall(partial)
    except (zipfile.BadZipFile, OSError) as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise MirageError(
            f"cannot unpack {wheel}: {exc}", hint="delete it to fetch it again"
        ) from None
    except MirageError:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    try:
        partial.rename(target)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
        if not target.is_dir():  # another build unpacked it meanwhile, or not
            raise
    return target
