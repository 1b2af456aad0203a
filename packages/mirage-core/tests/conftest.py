from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from mirage.core import Registry
from mirage.core.plugins import load_registry

HERE = Path(__file__).parent


@pytest.fixture
def registry() -> Registry:
    import fakes

    from mirage.core import _builtin

    reg = load_registry(entrypoints=False, plugins=[("core", _builtin), ("fakes", fakes)])
    assert not reg.failures, reg.failures
    return reg


@pytest.fixture
def project(tmp_path: Path) -> Callable[..., Path]:
    """Write a project: ``project(config=..., **files)`` -> its directory."""

    def make(config: str, **files: str) -> Path:
        (tmp_path / "config.py").write_text(textwrap.dedent(config))
        for name, text in files.items():
            (tmp_path / name).write_text(textwrap.dedent(text))
        return tmp_path

    return make


def run_mirage(directory: Path, *args: str, env: dict[str, str] | None = None):
    """Run the mirage command with the fakes plugin; a CompletedProcess."""
    environ = dict(os.environ)
    environ["MIRAGE_PLUGINS"] = "fakes"
    environ["PYTHONPATH"] = os.pathsep.join([str(HERE), *filter(None, [environ.get("PYTHONPATH")])])
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "mirage.core", "-C", str(directory), *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )


@pytest.fixture
def mirage() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_mirage
