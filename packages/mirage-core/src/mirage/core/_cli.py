"""The ``mirage`` command.

``configure`` resolves ``config.py`` into a plan under ``mirage/`` and caches its
arguments; ``build``, ``run``, ``describe`` and ``query`` read the plan (and configure
again, with the cached arguments, when ``config.py`` changed since). Every error the
user can cause is one paragraph on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._errors import ConfigError, MirageError

if TYPE_CHECKING:
    import argparse

    from ._plan import Plan
    from ._registry import Registry
    from .build import ArtifactContext

__all__ = ["main"]

PLAN_DIR = "mirage"
DIST_DIR = "dist"
DEFAULT_TARGET = "unix"


def _formatter(prog: str) -> argparse.HelpFormatter:
    import argparse

    """argparse's formatter, told the width: left to itself it imports shutil (and
    lzma, bz2...) for every parser, which is a tenth of ``mirage plugins``."""
    try:
        width = int(os.environ.get("COLUMNS", "")) - 2
    except ValueError:
        try:
            width = os.get_terminal_size().columns - 2
        except OSError:
            width = 78
    return argparse.HelpFormatter(prog, width=max(width, 40))


def _parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(
        prog="mirage",
        description="Configure, build and run mirage unikernels.",
        allow_abbrev=False,
        formatter_class=_formatter,
    )
    parser.add_argument(
        "-C", "--project", default=".", metavar="DIR", help="project directory (default: .)"
    )
    parser.add_argument(
        "-f", "--file", default=None, metavar="FILE", help="configuration (default: config.py)"
    )
    # An explicit prog spares argparse a help formatter (and its imports) at start-up.
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", prog="mirage")
    sub.required = True
    configure = sub.add_parser(
        "configure",
        formatter_class=_formatter,
        allow_abbrev=False,
        help="resolve config.py into a plan",
        description="Resolve config.py for a target. Any other --KEY VALUE sets a"
        " configure-time key; 'mirage describe' lists them.",
    )
    configure.add_argument("-t", "--target", default=None, help="target (default: unix)")
    sub.add_parser("build", formatter_class=_formatter, help="seal the plan into dist/")
    run = sub.add_parser(
        "run", formatter_class=_formatter, help="run the artifact; arguments go to the unikernel"
    )
    run.add_argument("argv", nargs="*", help="runtime arguments (see 'mirage run -- --help')")
    describe = sub.add_parser(
        "describe", formatter_class=_formatter, help="the device graph, keys and choices"
    )
    describe.add_argument("--dot", action="store_true", help="print the graph in DOT")
    describe.add_argument("-o", "--output", default=None, help="write to this file")
    query = sub.add_parser("query", formatter_class=_formatter, help="what the plan needs")
    query.add_argument("what", choices=("packages", "keys", "devices", "targets"))
    sub.add_parser(
        "plugins", formatter_class=_formatter, help="installed plugins and what they register"
    )
    sub.add_parser("clean", formatter_class=_formatter, help="remove the plan and the artifacts")
    return parser


def _split_keys(tokens: Sequence[str]) -> dict[str, str]:
    """``--name value``, ``--name=value`` or a bare ``--flag`` (true)."""
    keys: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--") or len(token) == 2:
            raise ConfigError(
                f"unexpected argument {token!r}",
                hint="configure takes -t TARGET and --KEY VALUE pairs",
            )
        name, eq, value = token[2:].partition("=")
        if not eq:
            if i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
                value = tokens[i + 1]
                i += 1
            else:
                value = "true"
        keys[name] = value
        i += 1
    return keys


class Project:
    def __init__(self, directory: str, config_file: str | None) -> None:
        from pathlib import Path

        self.dir = Path(directory).resolve()
        self.config = (self.dir / (config_file or "config.py")).resolve()
        self.plan_dir = self.dir / PLAN_DIR
        self.dist_dir = self.dir / DIST_DIR
        self.plan_path = self.plan_dir / "plan.json"
        self._registry: Registry | None = None

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            from .plugins import load_registry

            self._registry = load_registry()
        return self._registry

    def configure(self, target: str | None, raw: Sequence[str]) -> Plan:
        from ._codegen import generate_main
        from ._resolve import load_config, resolve

        keys = _split_keys(raw)
        config = load_config(self.config)
        args = ["-t", target or DEFAULT_TARGET, *raw]
        plan = resolve(
            config,
            self.registry,
            target or DEFAULT_TARGET,
            keys,
            config_path=self.config,
            configure_args=args,
        )
        self.plan_dir.mkdir(parents=True, exist_ok=True)
        (self.plan_dir / "main.py").write_text(generate_main(plan))
        (self.plan_dir / "requirements.txt").write_text("".join(r + "\n" for r in plan.requires))
        self.plan_path.write_text(plan.to_json())
        return plan

    def plan(self) -> Plan:
        from ._plan import Plan

        plan = Plan.load(self.plan_path)
        config = type(self.dir)(plan.config)
        if config.exists() and config.stat().st_mtime > self.plan_path.stat().st_mtime:
            args = plan.configure_args
            target = args[1] if args[:1] == ["-t"] else None
            plan = self.configure(target, args[2:] if target else args)
        return plan

    def artifact_context(self, plan: Plan) -> ArtifactContext:
        import shutil

        from ._codegen import generate_main
        from .build import ArtifactContext, BuildContext
        from .plugins import import_object

        gen_dir = self.plan_dir / "gen"
        if gen_dir.exists():
            shutil.rmtree(gen_dir)
        gen_dir.mkdir(parents=True)
        build_args: dict[str, dict[str, str]] = {}
        for device in plan.devices:
            if device.build is None:
                continue
            step = import_object(device.build, f"build step of {device.id!r}")
            ctx = BuildContext(self.dir, gen_dir, device.id, plan.target, device.params)
            try:
                result = step(ctx)
            except MirageError:
                raise
            except Exception as exc:
                raise MirageError(
                    f"the build step of device {device.id!r} failed: {type(exc).__name__}: {exc}",
                    where=device.where,
                ) from exc
            build_args[device.id] = dict(result or {})
        source = generate_main(plan, build_args)
        (self.plan_dir / "main.py").write_text(source)
        return ArtifactContext(plan, self.dir, source, gen_dir, self.dist_dir)

    def target_hook(self, plan: Plan, which: str) -> Any:
        from .plugins import import_object

        registered = self.registry.targets.get(plan.target)
        if registered is None:
            raise MirageError(
                f"the plan is for target {plan.target!r}, which no installed plugin provides",
                hint="install the plugin of that target, or configure for another one",
            )
        target = registered.value
        return import_object(getattr(target, which), f"{which} of target {plan.target!r}")


def _cmd_configure(project: Project, ns: argparse.Namespace, extra: list[str]) -> int:
    plan = project.configure(ns.target, extra)
    keys = ", ".join(f"{k}={v!r}" for k, v in plan.keys.items()) or "none"
    print(
        f"configured {plan.name} for target {plan.target} ({len(plan.devices)} devices;"
        f" keys: {keys})"
    )
    print(f"plan written to {os.path.relpath(project.plan_dir)}/")
    return 0


def _cmd_build(project: Project, ns: argparse.Namespace) -> int:
    plan = project.plan()
    builder = project.target_hook(plan, "builder")
    ctx = project.artifact_context(plan)
    artifacts = builder(ctx)
    for path in artifacts:
        print(f"built {os.path.relpath(path)}")
    return 0


def _cmd_run(project: Project, ns: argparse.Namespace) -> int:
    plan = project.plan()
    runner = project.target_hook(plan, "runner")
    from .build import ArtifactContext

    argv = list(ns.argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    ctx = ArtifactContext(plan, project.dir, "", project.plan_dir / "gen", project.dist_dir)
    return int(runner(ctx, argv))


def _cmd_describe(project: Project, ns: argparse.Namespace) -> int:
    from ._describe import describe_text, to_dot

    plan = project.plan()
    text = to_dot(plan) if ns.dot else describe_text(plan)
    if ns.output:
        with open(ns.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _cmd_query(project: Project, ns: argparse.Namespace) -> int:
    if ns.what == "targets":
        for name, registered in sorted(project.registry.targets.items()):
            print(
                f"{name}\t{registered.plugin.dist or registered.plugin.name}"
                f"\t{registered.value.doc}"
            )
        return 0
    plan = project.plan()
    if ns.what == "packages":
        for requirement in plan.requires:
            print(requirement)
    elif ns.what == "keys":
        for name, value in plan.keys.items():
            print(f"--{name}={value}\tconfigure\t{plan.key_docs.get(name, '')}")
        for arg in plan.runtime_args():
            default = "required" if arg.required else f"default {arg.default!r}"
            print(f"--{arg.name}\truntime ({arg.type}, {default})\t{arg.doc}")
    else:
        for device in plan.devices:
            kind = "job" if device.is_job else f"{device.module_type} {device.impl}"
            print(f"{device.id}\t{kind}\t{device.factory}")
    return 0


def _cmd_plugins(project: Project | None, ns: argparse.Namespace | None) -> int:
    from .plugins import load_registry

    registry = project.registry if project is not None else load_registry()
    for info in registry.plugins:
        print(f"{info.name}: {info.dist or '?'} {info.version}".rstrip())
        for kind, names in registry.registered_by(info).items():
            print(f"    {kind}: {', '.join(names)}")
    for failure in registry.failures:
        print(f"{failure.plugin.describe()} failed to load: {failure.error}")
    return 0


def _cmd_clean(project: Project, ns: argparse.Namespace) -> int:
    import shutil

    for directory in (project.plan_dir, project.dist_dir):
        if directory.exists():
            shutil.rmtree(directory)
            print(f"removed {os.path.relpath(directory)}/")
    return 0


_COMMANDS = {
    "build": _cmd_build,
    "run": _cmd_run,
    "describe": _cmd_describe,
    "query": _cmd_query,
    "clean": _cmd_clean,
}


def _split_run(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """For ``run``, everything after the command belongs to the unikernel."""
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in ("-C", "--project", "-f", "--file"):
            i += 2
            continue
        if token.startswith("-"):
            i += 1
            continue
        if token == "run":
            return argv[: i + 1], argv[i + 1 :]
        break
    return argv, None


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (``mirage plugins | head``): stop quietly, as cat does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _main(argv: Sequence[str] | None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["plugins"]:
        # The one command that takes no option, and the one run to see what is
        # installed: answered without building the parser (argparse, gettext and the
        # parser itself are a fifth of its start-up).
        return _cmd_plugins(None, None)
    parser = _parser()
    head, run_argv = _split_run(args)
    ns, extra = parser.parse_known_args(head)
    if run_argv is not None:
        ns.argv = run_argv
    if extra and ns.command != "configure":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if ns.command == "plugins":
            return _cmd_plugins(None, ns)
        project = Project(ns.project, ns.file)
        if ns.command == "configure":
            return _cmd_configure(project, ns, extra)
        return _COMMANDS[ns.command](project, ns)
    except MirageError as exc:
        print(f"mirage: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
