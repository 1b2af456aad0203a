"""Shared helpers: running the real ``git`` with a clean, fixed environment."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

GIT = shutil.which("git")

needs_git = pytest.mark.skipif(GIT is None, reason="needs the git command (apt package git)")

GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "A U Thor",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "C O Mitter",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
    "GIT_AUTHOR_DATE": "1700000000 +0100",
    "GIT_COMMITTER_DATE": "1700000000 +0100",
}


def git(*args: str, cwd: Path | str, input: bytes | None = None) -> bytes:
    """Run ``git args`` in ``cwd``; its standard output (a failure raises)."""
    assert GIT is not None
    result = subprocess.run(
        [GIT, *args], cwd=cwd, input=input, capture_output=True, env=GIT_ENV, check=False
    )
    if result.returncode:
        raise AssertionError(f"git {' '.join(args)} failed: {result.stderr.decode()}")
    return result.stdout
