"""A plugin for core's own tests: devices that record what happens to them, and a
target ``fake`` whose artifacts are zipapps built with mirage.core.build."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mirage.core import Impl, Param, Registry, RuntimeArg, Target, hookimpl
from mirage.core.build import ArtifactContext, collect_modules, write_zipapp
from mirage.core.dsl import impl, key, match_impl

_F = "fake_devices:"


IMPLS = (
    Impl("fake_console", "console", _F + "Console"),
    Impl("fake_clock", "clock", _F + "Clock"),
    Impl(
        "fake_stack",
        "stack",
        _F + "Stack",
        needs={"clock": "clock"},
        runtime_args=(RuntimeArg("ipv4", "str", "10.0.0.2", "address"),),
        requires=("fake-stack>=1",),
    ),
    Impl("other_stack", "stack", _F + "Stack", needs={"clock": "clock"}),
    Impl(
        "fake_store",
        "kv_ro",
        _F + "Store",
        params=(Param("root", "path"), Param("size", "int", 3)),
        needs={"clock": "clock"},
    ),
    Impl("broken", "console", _F + "Broken"),
    # A cycle through defaults: a loop_stack needs a stack, which is a loop_stack.
    Impl("loop_stack", "stack", _F + "Stack", needs={"inner": "stack"}),
)


def build(ctx: ArtifactContext) -> list[Path]:
    main = ctx.gen_dir.parent / "main.py"
    main.write_text(ctx.main_source)
    target = ctx.dist_dir / f"{ctx.plan.name}.pyz"
    write_zipapp(target, ctx.main_source.encode(), collect_modules(main, ctx.search_path))
    return [target]


def run(ctx: ArtifactContext, argv: list[str]) -> int:
    return subprocess.call([sys.executable, str(ctx.dist_dir / f"{ctx.plan.name}.pyz"), *argv])


@hookimpl
def mirage_register_impls(registry: Registry) -> None:
    for declaration in IMPLS:
        registry.add_impl(declaration)


@hookimpl
def mirage_register_targets(registry: Registry) -> None:
    registry.add_target(
        Target(
            "fake",
            builder="fakes:build",
            runner="fakes:run",
            defaults={
                "console": impl("fake_console"),
                "clock": impl("fake_clock"),
                "stack": match_impl(
                    key("net"),
                    {"direct": impl("warp_stack", dist="mirage-warp")},
                    default=impl("fake_stack"),
                ),
            },
            requires=("fake-target>=1",),
        )
    )
    registry.add_target(
        Target(
            "loopy",
            builder="fakes:build",
            runner="fakes:run",
            defaults={"stack": impl("loop_stack"), "console": impl("fake_console")},
        )
    )
    registry.add_target(Target("bare", builder="fakes:build", runner=_F + "run"))
