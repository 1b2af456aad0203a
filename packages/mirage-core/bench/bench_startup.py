"""bench-core: start-up costs of the mirage tool and of an artifact, beside baselines.

Each figure is the median of several runs of a fresh process, measured in the same run
as its baseline; the ratio is what matters (the machines are shared and noisy).

- ``mirage plugins`` with every package installed, against ``python -c pass`` plus
  ``import pluggy`` (goal: at most 2x).
- ``python dist/hello.pyz`` to its first line, against a hand-written asyncio hello
  script (goal: at most 1.5x).
- ``configure`` + ``build`` of hello in seconds, and the zipapp's size beside the size
  of the installed packages it draws from.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
RUNS = 15

# Measured as installed packages run: with their bytecode cached. (Some environments
# set PYTHONDONTWRITEBYTECODE; then every start would compile our editable sources,
# while the baseline's pluggy comes precompiled from its wheel.)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

HELLO_BASELINE = """
import asyncio, sys

async def main():
    sys.stdout.write("Hello World!\\n")
    sys.stdout.flush()

asyncio.run(main())
"""


def first_line_time(argv: list[str]) -> float:
    """Seconds from process start to its first line on stdout."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV)
    assert child.stdout is not None
    child.stdout.readline()
    elapsed = time.perf_counter() - start
    child.stdout.close()
    child.kill()
    child.wait()
    return elapsed


def whole_time(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=ENV)
    return time.perf_counter() - start


def median(fn, argv: list[str]) -> float:  # type: ignore[no-untyped-def]
    fn(argv)  # warm the page cache
    return statistics.median(fn(argv) for _ in range(RUNS))


def report(what: str, ours: float, base: float, goal: float) -> bool:
    ratio = ours / base
    verdict = "ok" if ratio <= goal else "OVER GOAL"
    print(
        f"{what:<44} ours {ours * 1000:7.1f} ms  baseline {base * 1000:7.1f} ms"
        f"  ratio {ratio:4.2f} (goal <= {goal}) {verdict}"
    )
    return ratio <= goal


def dist_size(module: str) -> int:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.submodule_search_locations
    total = 0
    for location in spec.submodule_search_locations:
        total += sum(p.stat().st_size for p in Path(location).rglob("*.py"))
    return total


def main() -> int:
    python = sys.executable
    ok = True
    plugins = median(whole_time, [python, "-m", "mirage.core", "plugins"])
    mirage = shutil.which("mirage")
    if mirage:
        plugins = min(plugins, median(whole_time, [mirage, "plugins"]))
    base = median(whole_time, [python, "-c", "import pluggy"])
    ok &= report("mirage plugins vs python + import pluggy", plugins, base, 2.0)

    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "hello"
        shutil.copytree(
            ROOT / "examples" / "hello", project, ignore=shutil.ignore_patterns("mirage", "dist")
        )
        start = time.perf_counter()
        for command in (["configure", "-t", "unix"], ["build"]):
            subprocess.run(
                [python, "-m", "mirage.core", "-C", str(project), *command],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        seconds = time.perf_counter() - start
        pyz = project / "dist" / "hello.pyz"
        baseline = Path(tmp) / "hello_baseline.py"
        baseline.write_text(HELLO_BASELINE)
        ours = median(first_line_time, [python, str(pyz), "--delay-ms", "0"])
        base = median(first_line_time, [python, str(baseline)])
        ok &= report("hello.pyz first line vs asyncio hello script", ours, base, 1.5)
        drawn = dist_size("mirage.core") + dist_size("mirage.unix")
        print(f"configure + build of hello: {seconds:.2f} s")
        print(
            f"hello.pyz: {pyz.stat().st_size / 1024:.1f} KiB; the installed packages it"
            f" draws from (mirage-core, mirage-unix sources): {drawn / 1024:.1f} KiB"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
