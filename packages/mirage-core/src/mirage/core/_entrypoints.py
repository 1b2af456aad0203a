"""Finding the ``mirage`` entry points fast.

:mod:`importlib.metadata` parses every distribution's metadata with the email package
and costs more than the rest of ``mirage plugins`` together. Entry points are only
``entry_points.txt`` files in the ``*.dist-info`` (or ``*.egg-info``) folders on
``sys.path``, so they are read directly: the first distribution of a name on the path
wins, as with the import system.
"""

from __future__ import annotations

import os
import re
import sys

__all__ = ["EntryPoint", "find_entry_points"]

_SECTION = re.compile(r"^\[\s*([^\]]+?)\s*\]$")


class EntryPoint:
    __slots__ = ("dist", "name", "value", "version")

    def __init__(self, name: str, value: str, dist: str, version: str) -> None:
        self.name = name
        self.value = value
        self.dist = dist
        self.version = version

    def __repr__(self) -> str:
        return f"EntryPoint({self.name!r}, {self.value!r}, {self.dist!r}, {self.version!r})"

    def load(self) -> object:
        from importlib import import_module

        module_name, _, attr = self.value.partition(":")
        obj: object = import_module(module_name.strip())
        for part in filter(None, attr.strip().split(".")):
            obj = getattr(obj, part)
        return obj


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _dist_name(folder: str, fallback: str) -> str:
    """The distribution's own spelling of its name, from its metadata header."""
    for filename in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(folder, filename), encoding="utf-8") as f:
                for line in f:
                    if line.startswith("Name:"):
                        return line[5:].strip()
                    if not line.strip():
                        break
        except OSError:
            continue
    return fallback


def _parse(text: str, group: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        match = _SECTION.match(line)
        if match:
            section = match.group(1)
            continue
        if section != group or "=" not in line:
            continue
        name, _, value = line.partition("=")
        value = value.split("[", 1)[0].strip()  # drop extras
        found.append((name.strip(), value))
    return found


def find_entry_points(group: str, path: list[str] | None = None) -> list[EntryPoint]:
    seen: set[str] = set()
    found: list[EntryPoint] = []
    for entry in sys.path if path is None else path:
        try:
            listing = sorted(os.listdir(entry or "."))
        except OSError:
            continue
        for folder in listing:
            if not folder.endswith((".dist-info", ".egg-info")):
                continue
            stem = folder.rsplit(".", 1)[0]
            dist, _, version = stem.partition("-")
            key = _normalise(dist)
            if key in seen:
                continue
            seen.add(key)
            full = os.path.join(entry or ".", folder)
            try:
                with open(os.path.join(full, "entry_points.txt"), encoding="utf-8") as f:
                    text = f.read()
            except OSError:
                continue
            points = _parse(text, group)
            if points:
                name = _dist_name(full, dist)
                found.extend(EntryPoint(n, v, name, version) for n, v in points)
    return found
