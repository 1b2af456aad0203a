"""Every package's plugin, loaded together: no clashes, nothing missing."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from mirage.core.plugins import load_registry

ROOT = Path(__file__).resolve().parents[2]


def _entry_points() -> dict[str, str]:
    """Entry-point name -> distribution, from every package's pyproject.toml."""
    found = {}
    for pyproject in ROOT.glob("packages/*/pyproject.toml"):
        project = tomllib.loads(pyproject.read_text())["project"]
        for name in project.get("entry-points", {}).get("mirage", {}):
            found[name] = project["name"]
    return found


def test_all_plugins_load_together() -> None:
    registry = load_registry()
    assert registry.failures == []
    loaded = {p.name: p.dist for p in registry.plugins}
    for name, dist in _entry_points().items():
        assert loaded.get(name) == dist, f"{dist}'s plugin {name!r} did not load"


def test_mirage_plugins_lists_every_package() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mirage.core", "plugins"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for name, dist in _entry_points().items():
        assert f"{name}: {dist} " in result.stdout
    assert "failed" not in result.stdout
