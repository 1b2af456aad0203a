"""The unix target seals exactly what the plan reaches into one zipapp."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

HELLO = """
from mirage.core.dsl import default, job, register
register("hi", job("unikernel:start", console=default("console"), sleep=default("sleep")))
"""

APP = """
import helper

async def start(console, sleep):
    await sleep.sleep_ns(1000)
    await console.log(helper.GREETING)
"""


def mirage(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mirage.core", "-C", str(directory), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_zipapp_holds_only_the_modules_the_plan_reaches(tmp_path: Path) -> None:
    (tmp_path / "config.py").write_text(textwrap.dedent(HELLO))
    (tmp_path / "unikernel.py").write_text(textwrap.dedent(APP))
    (tmp_path / "helper.py").write_text("GREETING = 'hello from a helper module'\n")
    (tmp_path / "unused.py").write_text("raise SystemExit('never imported')\n")
    assert mirage(tmp_path, "configure", "-t", "unix").returncode == 0
    result = mirage(tmp_path, "build")
    assert result.returncode == 0, result.stderr
    pyz = tmp_path / "dist" / "hi.pyz"
    modules = {n for n in zipfile.ZipFile(pyz).namelist() if n.endswith(".py")}
    assert modules == {
        "__main__.py",
        "helper.py",
        "unikernel.py",
        "mirage/core/__init__.py",
        "mirage/core/runtime.py",
        "mirage/core/types.py",
        "mirage/unix/__init__.py",
        "mirage/unix/console.py",
        "mirage/unix/time.py",
    }
    # It runs with no project beside it and no mirage installed on the path.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    out = subprocess.run(
        [sys.executable, "-I", "-S", str(pyz)],
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "hello from a helper module\n"


def test_same_plan_gives_the_same_bytes(tmp_path: Path) -> None:
    (tmp_path / "config.py").write_text(textwrap.dedent(HELLO))
    (tmp_path / "unikernel.py").write_text(textwrap.dedent(APP))
    (tmp_path / "helper.py").write_text("GREETING = 'x'\n")
    assert mirage(tmp_path, "configure").returncode == 0
    assert mirage(tmp_path, "build").returncode == 0
    first = (tmp_path / "dist" / "hi.pyz").read_bytes()
    assert mirage(tmp_path, "build").returncode == 0
    assert (tmp_path / "dist" / "hi.pyz").read_bytes() == first


def test_run_passes_runtime_arguments(tmp_path: Path) -> None:
    (tmp_path / "config.py").write_text(
        textwrap.dedent(
            """
            from mirage.core.dsl import default, job, register, runtime_arg
            register("a", job("unikernel:start", console=default("console"),
                              args=[runtime_arg("name", default="world")]))
            """
        )
    )
    (tmp_path / "unikernel.py").write_text(
        "async def start(console, name):\n    await console.log('hello ' + name)\n"
    )
    assert mirage(tmp_path, "configure").returncode == 0
    assert mirage(tmp_path, "build").returncode == 0
    result = mirage(tmp_path, "run", "--name", "mirage")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello mirage\n"
    result = mirage(tmp_path, "run", "--name")
    assert result.returncode == 2
    assert "expected one argument" in result.stderr
