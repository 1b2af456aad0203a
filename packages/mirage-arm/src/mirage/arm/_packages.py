"""The Debian packages (and versions) an ARM image needs: mirage-vm's lookup and cache.

The kernel metapackage ``linux-image-<flavour>`` is followed to the versioned image it
depends on, the versions of all the packages are looked up with one ``apt-cache``
call, and only what mirage-vm's cache (by version) lacks is downloaded.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mirage.vm import images

__all__ = ["fetch_root"]


def fetch_root(packages: list[str], kernel_flavour: str, arch: str) -> Path:
    """The unpacked root of ``packages`` and the kernel ``linux-image-<flavour>``
    points at, downloading only what the cache lacks."""
    kernel = images.kernel_package(kernel_flavour, arch)
    log: list[str] = []
    paths = images.fetch([*packages, kernel], arch, log)
    for line in log:
        print(line, file=sys.stderr)
    return images.unpack(paths)
