"""Kernel and runtime from the distribution's packages, cached by version.

``apt-get download`` fetches a package (for another architecture too, once dpkg knows
it); the ``.deb`` is kept under the cache folder with its version in its name, so a
second build, or a CI run on the same machine, downloads nothing. ``dpkg-deb -x``
unpacks into a root folder named after the set of packages.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from mirage.core import MirageError

__all__ = ["cache_dir", "candidate", "candidates", "fetch", "kernel_package", "unpack"]


def cache_dir() -> Path:
    """``$MIRAGE_CACHE``, else ``$XDG_CACHE_HOME/mirage``, else ``~/.cache/mirage``."""
    explicit = os.environ.get("MIRAGE_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mirage"


def _run(argv: list[str], what: str) -> str:
    if shutil.which(argv[0]) is None:
        raise MirageError(
            f"{argv[0]} is not installed, and {what} needs it",
            hint="the virtio target takes its kernel and runtime from Debian packages;"
            " pass your own with --kernel and --runtime instead",
        )
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()
        raise MirageError(
            f"{what} failed: {message[-1] if message else 'exit status ' + str(result.returncode)}",
            hint="run 'apt-get update' if the package lists are missing or old",
        )
    return result.stdout


def kernel_package(flavour: str, arch: str) -> str:
    """The versioned kernel package the metapackage ``linux-image-<flavour>`` points at."""
    meta = f"linux-image-{flavour}"
    out = _run(["apt-cache", "depends", f"{meta}:{arch}"], f"looking up {meta}")
    for raw in out.splitlines():
        line = raw.strip()
        if line.startswith("Depends:") and "linux-image-" in line:
            return line.split()[-1].split(":")[0]
    raise MirageError(
        f"{meta} depends on no kernel image", hint="pass a kernel of your own with --kernel"
    )


def candidate(package: str, arch: str) -> str:
    """The version ``apt-get download`` would fetch."""
    out = _run(
        ["apt-cache", "show", "--no-all-versions", f"{package}:{arch}"],
        f"looking up the package {package} ({arch})",
    )
    for line in out.splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    raise MirageError(f"no version of {package} ({arch}) is known to apt")


def candidates(packages: list[str], arch: str) -> dict[str, str]:
    """The versions ``apt-get download`` would fetch, for all ``packages`` in one call."""
    if not packages:
        return {}
    argv = ["apt-cache", "show", "--no-all-versions", *(f"{p}:{arch}" for p in packages)]
    if shutil.which(argv[0]) is None:
        _run(argv, f"looking up the packages {', '.join(packages)} ({arch})")
    # apt-cache fails when one package is unknown, yet prints the others: read them all.
    out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
    versions: dict[str, str] = {}
    package = None
    for line in out.splitlines():
        if line.startswith("Package:"):
            package = line.split(":", 1)[1].strip()
        elif line.startswith("Version:") and package is not None:
            versions.setdefault(package, line.split(":", 1)[1].strip())
    missing = [p for p in packages if p not in versions]
    if missing:
        raise MirageError(
            f"apt knows no {', '.join(missing)} for the architecture {arch}",
            hint=f"run 'apt-get update' (for a foreign architecture first 'dpkg"
            f" --add-architecture {arch}'), or pass a kernel (--vm-kernel) or an unpacked"
            " runtime (--vm-runtime) of your own",
        )
    return versions


def _deb_name(package: str, version: str, arch: str) -> str:
    return f"{package}_{version.replace(':', '%3a')}_{arch}.deb"


def fetch(packages: list[str], arch: str, log: list[str] | None = None) -> list[Path]:
    """The ``.deb`` files of ``packages`` for ``arch``, downloading what is not cached."""
    debs = cache_dir() / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    paths = []
    versions = candidates(list(packages), arch)
    for package in packages:
        version = versions[package]
        path = debs / _deb_name(package, version, arch)
        if not path.exists():
            # apt-get download writes into the current folder.
            tmp = debs / f".download-{os.getpid()}"
            tmp.mkdir(exist_ok=True)
            argv = ["apt-get", "download", "-q", f"{package}:{arch}={version}"]
            if shutil.which("apt-get") is None:
                _run(argv, f"downloading {package}")
            result = subprocess.run(argv, cwd=tmp, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                shutil.rmtree(tmp, ignore_errors=True)
                raise MirageError(
                    f"downloading {package} {version} ({arch}) failed:"
                    f" {result.stderr.strip().splitlines()[-1:] or result.returncode}",
                    hint="run 'apt-get update'; for a foreign architecture first"
                    f" 'dpkg --add-architecture {arch}'",
                )
            (downloaded,) = tmp.glob("*.deb")
            os.replace(downloaded, path)
            shutil.rmtree(tmp, ignore_errors=True)
            if log is not None:
                log.append(f"downloaded {path.name}")
        paths.append(path)
    return paths


def unpack(debs: list[Path]) -> Path:
    """One root folder holding the contents of ``debs`` (cached by their names)."""
    key = hashlib.sha256("\n".join(sorted(d.name for d in debs)).encode()).hexdigest()[:16]
    root = cache_dir() / "roots" / key
    if (root / ".complete").exists():
        return root
    tmp = root.with_name(root.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for deb in debs:
        _run(["dpkg-deb", "-x", str(deb), str(tmp)], f"unpacking {deb.name}")
    (tmp / ".complete").write_text("\n".join(d.name for d in debs) + "\n")
    shutil.rmtree(root, ignore_errors=True)
    os.replace(tmp, root)
    return root
