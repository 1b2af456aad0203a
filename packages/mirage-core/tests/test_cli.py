"""The mirage command end to end, with the fakes plugin's target."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

APP = """
import asyncio

async def start(console, stack, greeting, count, wait=False):
    for _ in range(count):
        await console.log(greeting)
    await console.log("ipv4=" + stack.kwargs["ipv4"])
    if wait:
        await console.log("waiting")
        await asyncio.Event().wait()
"""

CONFIG = """
from mirage.core.dsl import default, job, register, runtime_arg
register("app", job("unikernel:start", console=default("console"), stack=default("stack"),
                    args=[runtime_arg("greeting", default="hi"),
                          runtime_arg("count", "int", default=1),
                          runtime_arg("wait", "bool", default=False)]))
"""

Mirage = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def app(project: Callable[..., Path]) -> Path:
    return project(CONFIG, **{"unikernel.py": APP})


def test_configure_build_run(app: Path, mirage: Mirage, tmp_path: Path) -> None:
    result = mirage(app, "configure", "-t", "fake")
    assert result.returncode == 0, result.stderr
    assert "configured app for target fake" in result.stdout
    assert (app / "mirage" / "plan.json").exists()
    main = (app / "mirage" / "main.py").read_text()
    # Only the chosen implementations are imported.
    assert "from fake_devices import Stack" in main and "other_stack" not in main
    compile(main, "main.py", "exec")

    result = mirage(app, "build")
    assert result.returncode == 0, result.stderr
    pyz = app / "dist" / "app.pyz"
    names = zipfile.ZipFile(pyz).namelist()
    assert "unikernel.py" in names and "unikernel.pyc" in names
    assert "mirage/core/runtime.py" in names
    # Nothing of the tool itself: no resolver, no plugin manager, no pluggy.
    assert not [n for n in names if "_resolve" in n or "pluggy" in n or "plugins.py" in n]

    log = tmp_path / "devices.log"
    result = mirage(app, "run", "--count", "2", "--greeting", "hello", env={"FAKES_LOG": str(log)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["hello", "hello", "ipv4=10.0.0.2"]
    # Dependency order on connect, reverse order on disconnect.
    assert log.read_text().splitlines() == [
        "connect console []",
        "connect clock []",
        "connect stack ['clock', 'ipv4']",
        "disconnect stack",
        "disconnect clock",
        "disconnect console",
    ]


def test_artifact_runs_alone_and_reports_bad_runtime_args(app: Path, mirage: Mirage) -> None:
    assert mirage(app, "configure", "-t", "fake").returncode == 0
    assert mirage(app, "build").returncode == 0
    moved = app / "elsewhere.pyz"
    shutil.copy(app / "dist" / "app.pyz", moved)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-I", str(moved), "--help"], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0
    for option in ("--greeting", "--count", "--wait", "--ipv4", "--logs"):
        assert option in out.stdout
    out = subprocess.run(
        [sys.executable, str(moved), "--count", "many"], capture_output=True, text=True, env=env
    )
    assert out.returncode == 2
    assert "argument --count: invalid int value: 'many'" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_cleanly(
    app: Path, mirage: Mirage, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    assert mirage(app, "configure", "-t", "fake").returncode == 0
    assert mirage(app, "build").returncode == 0
    log = tmp_path / "devices.log"
    env = dict(os.environ, FAKES_LOG=str(log))
    child = subprocess.Popen(
        [sys.executable, str(app / "dist" / "app.pyz"), "--wait"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    lines = []
    for line in child.stdout:
        lines.append(line.strip())
        if line.strip() == "waiting":
            break
    child.send_signal(stop_signal)
    _, err = child.communicate(timeout=30)
    assert child.returncode == 0, err
    assert f"stopped by {stop_signal.name}" in err
    assert "Traceback" not in err
    assert log.read_text().splitlines()[-1] == "disconnect console"


def test_a_device_that_fails_to_connect(project: Callable[..., Path], mirage: Mirage) -> None:
    directory = project(
        """
        from mirage.core.dsl import impl, job, register
        register("b", job("unikernel:start", console=impl("broken")))
        """,
        **{"unikernel.py": "async def start(console):\n    pass\n"},
    )
    assert mirage(directory, "configure", "-t", "fake").returncode == 0
    assert mirage(directory, "build").returncode == 0
    result = mirage(directory, "run")
    assert result.returncode == 1
    assert "device 'broken' failed to connect: no such device" in result.stderr
    assert "Traceback" not in result.stderr


def test_describe_query_and_clean(app: Path, mirage: Mirage) -> None:
    assert mirage(app, "configure", "-t", "fake").returncode == 0
    dot = mirage(app, "describe", "--dot").stdout
    assert dot.startswith('digraph "app" {')
    assert '"fake_clock" -> "fake_stack" [label="clock"];' in dot
    assert '"fake_stack" -> "job" [label="stack"];' in dot
    if shutil.which("dot"):
        svg = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True)
        assert svg.returncode == 0 and "<svg" in svg.stdout
    text = mirage(app, "describe").stdout
    assert "--net=None" in text and "--greeting STR" in text
    assert mirage(app, "query", "packages").stdout.split() == ["fake-stack>=1", "fake-target>=1"]
    keys = mirage(app, "query", "keys").stdout
    assert "--net=None\tconfigure" in keys and "--count\truntime (int, default 1)" in keys
    devices = mirage(app, "query", "devices").stdout
    assert "fake_stack\tstack fake_stack\tfake_devices:Stack" in devices
    assert "fake\t" in mirage(app, "query", "targets").stdout
    result = mirage(app, "clean")
    assert result.returncode == 0 and not (app / "mirage").exists()


def test_configure_arguments_are_cached(app: Path, mirage: Mirage) -> None:
    assert mirage(app, "configure", "-t", "fake", "--net", "socket").returncode == 0
    assert "--net='socket'" in mirage(app, "describe").stdout
    # Editing config.py configures again with the cached arguments.
    time.sleep(0.01)
    config = app / "config.py"
    config.write_text(config.read_text().replace('default="hi"', 'default="bonjour"'))
    os.utime(config, (time.time() + 5, time.time() + 5))
    assert mirage(app, "build").returncode == 0
    result = mirage(app, "run")
    assert "bonjour" in result.stdout.splitlines()
    assert "--net='socket'" in mirage(app, "describe").stdout


@pytest.mark.parametrize(
    ("config", "args", "message"),
    [
        ("x = (\n", ["-t", "fake"], "config.py:1: syntax error"),
        (CONFIG, ["-t", "pdp11"], "unknown target 'pdp11'"),
        (CONFIG, ["-t", "fake", "--colour", "red"], "unknown key --colour"),
        (CONFIG, ["-t", "fake", "--net", "direct"], "install mirage-warp"),
        (CONFIG, ["-t", "fake", "--net", "pigeon"], "key --net does not accept 'pigeon'"),
        (CONFIG, ["-t", "loopy"], "the device graph has a cycle"),
        (CONFIG, ["-t", "fake", "stray"], "unexpected argument 'stray'"),
        (CONFIG, ["-t", "bare"], "target 'bare' has no default console"),
    ],
)
def test_bad_input_is_one_paragraph_and_exit_1(
    project: Callable[..., Path], mirage: Mirage, config: str, args: list[str], message: str
) -> None:
    directory = project(config, **{"unikernel.py": APP})
    result = mirage(directory, "configure", *args)
    assert result.returncode == 1
    assert result.stderr.startswith("mirage: error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3


def test_commands_before_configure_say_what_to_do(tmp_path: Path, mirage: Mirage) -> None:
    for command in ("build", "run", "describe"):
        result = mirage(tmp_path, command)
        assert result.returncode == 1
        assert "run 'mirage configure -t TARGET' first" in result.stderr


def test_plugins_lists_plugins_and_failures(tmp_path: Path, mirage: Mirage) -> None:
    result = mirage(tmp_path, "plugins", env={"MIRAGE_PLUGINS": "fakes,no_such_plugin_module"})
    assert result.returncode == 0
    assert "core: mirage-core" in result.stdout
    assert "fakes:" in result.stdout and "targets: bare, fake, loopy" in result.stdout
    assert "plugin 'no_such_plugin_module' failed to load: ModuleNotFoundError" in result.stdout


def test_a_reader_that_goes_away_stops_the_artifact_quietly(app: Path, mirage: Mirage) -> None:
    assert mirage(app, "configure", "-t", "fake").returncode == 0
    assert mirage(app, "build").returncode == 0
    child = subprocess.Popen(
        [sys.executable, str(app / "dist" / "app.pyz"), "--count", "1000000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None
    child.stdout.readline()
    child.stdout.close()  # as `| head -1` does
    _, err = child.communicate(timeout=60)
    assert child.returncode == 128 + signal.SIGPIPE
    assert b"Traceback" not in err
