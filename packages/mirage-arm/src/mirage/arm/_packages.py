"""Which Debian packages (and versions) an ARM image needs, looked up in one go.

mirage-vm's cache keeps each ``.deb`` under its version; finding the version costs one
``apt-cache`` start per package (about 2 s each here). This module asks ``apt-cache
show`` about every package at once, follows the kernel metapackage to the versioned
image it depends on with a second call, and downloads (through mirage-vm) only what
the cache lacks. :func:`parse_stanzas` is the pure part.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from mirage.core import MirageError
from mirage.vm import _debs

__all__ = ["deb_path", "fetch_root", "parse_stanzas", "show"]


def parse_stanzas(text: str) -> dict[str, dict[str, str]]:
    """``apt-cache show`` output: package name -> its fields (the first stanza wins)."""
    found: dict[str, dict[str, str]] = {}
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        last = ""
        for line in block.splitlines():
            if line[:1].isspace() and last:
                fields[last] += "\n" + line.strip()
            elif ":" in line:
                last, _, value = line.partition(":")
                fields[last] = value.strip()
        if "Package" in fields:
            found.setdefault(fields["Package"], fields)
    return found


def show(packages: list[str], arch: str) -> dict[str, dict[str, str]]:
    """The candidate stanza of each package for ``arch``, in one ``apt-cache`` call."""
    if shutil.which("apt-cache") is None:
        raise MirageError(
            "apt-cache is not installed; ARM images take their kernel and runtime from"
            " Debian's packages"
        )
    argv = ["apt-cache", "show", "--no-all-versions", *(f"{p}:{arch}" for p in packages)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    stanzas = parse_stanzas(result.stdout)
    missing = [p for p in packages if p not in stanzas]
    if missing:
        raise MirageError(
            f"apt knows no {', '.join(missing)} for {arch}",
            hint=f"run 'dpkg --add-architecture {arch} && apt-get update'",
        )
    return stanzas


def deb_path(package: str, version: str, arch: str) -> Path:
    """Where mirage-vm's cache keeps that ``.deb`` (the same name, so both share it)."""
    return _debs.cache_dir() / "debs" / f"{package}_{version.replace(':', '%3a')}_{arch}.deb"


def _kernel_image(meta: dict[str, str]) -> str:
    for dep in meta.get("Depends", "").split(","):
        name = dep.strip().split()[0] if dep.strip() else ""
        if name.startswith("linux-image-"):
            return name.split(":")[0]
    raise MirageError(f"{meta['Package']} depends on no kernel image")


def fetch_root(packages: list[str], kernel_flavour: str, arch: str) -> Path:
    """The unpacked root of ``packages`` and the kernel ``linux-image-<flavour>``
    points at, downloading only what the cache lacks."""
    meta = f"linux-image-{kernel_flavour}"
    stanzas = show([*packages, meta], arch)
    kernel = _kernel_image(stanzas.pop(meta))
    stanzas.update(show([kernel], arch))
    paths = []
    for package in [*packages, kernel]:
        path = deb_path(package, stanzas[package]["Version"], arch)
        if not path.exists():
            log: list[str] = []
            (path,) = _debs.fetch([package], arch, log)
            for line in log:
                print(line, file=sys.stderr)
        paths.append(path)
    return _debs.unpack(paths)
