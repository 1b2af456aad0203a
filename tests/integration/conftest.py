from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

Mirage = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def example(tmp_path: Path) -> Callable[[str], Path]:
    """A fresh copy of an example (no plan, no artifacts)."""

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(
            EXAMPLES / name, target, ignore=shutil.ignore_patterns("mirage", "dist", "__pycache__")
        )
        return target

    return copy


def run_mirage(
    directory: Path, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mirage.core", "-C", str(directory), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def mirage() -> Mirage:
    return run_mirage
