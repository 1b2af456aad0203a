"""Building and running unix artifacts: one zipapp per unikernel.

The zipapp holds the generated ``main.py`` as ``__main__.py`` and exactly the
non-standard-library modules it reaches (the application's, the chosen devices',
mirage-core's runtime), each with its bytecode. Packages with compiled extension
modules cannot be imported from a zip: they are left out and must be installed beside
the interpreter; the build says which.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from types import FrameType

from mirage.core._errors import MirageError
from mirage.core.build import ArtifactContext, ModuleFile, collect_modules, write_zipapp

__all__ = ["artifact_path", "build", "run"]

log = logging.getLogger("mirage.unix")

_SOURCE = (".py",)


def artifact_path(ctx: ArtifactContext) -> Path:
    return ctx.dist_dir / f"{ctx.plan.name}.pyz"


def _group(module: ModuleFile) -> str:
    """The unit kept or left out together: ``mirage.X`` for our namespace, else the
    top-level package."""
    parts = module.name.split(".")
    return ".".join(parts[:2]) if parts[0] == "mirage" and len(parts) > 1 else parts[0]


def build(ctx: ArtifactContext) -> list[Path]:
    main = ctx.gen_dir.parent / "main.py"
    main.write_text(ctx.main_source)
    modules = collect_modules(main, ctx.search_path)
    groups: dict[str, list[ModuleFile]] = defaultdict(list)
    for module in modules:
        groups[_group(module)].append(module)
    compiled = sorted(
        g for g, ms in groups.items() if any(m.path.suffix not in _SOURCE for m in ms)
    )
    if compiled:
        print(
            "note: left out of the zipapp (compiled extensions; install them beside"
            f" the interpreter): {', '.join(compiled)}",
            file=sys.stderr,
        )
    kept = [m for m in modules if _group(m) not in compiled]
    target = artifact_path(ctx)
    write_zipapp(target, ctx.main_source.encode(), kept)
    (ctx.dist_dir / f"{ctx.plan.name}.requirements.txt").write_text(
        "".join(r + "\n" for r in ctx.plan.requires)
    )
    return [target]


def run(ctx: ArtifactContext, argv: list[str]) -> int:
    """Run the zipapp with this interpreter, forwarding SIGTERM and SIGINT."""
    target = artifact_path(ctx)
    if not target.exists():
        raise MirageError(f"{target} does not exist", hint="run 'mirage build' first")
    child = subprocess.Popen([sys.executable, str(target), *argv])

    def forward(signum: int, frame: FrameType | None) -> None:
        child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
