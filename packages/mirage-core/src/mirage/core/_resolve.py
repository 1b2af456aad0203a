"""From ``config.py`` to a plan: loading the configuration and resolving its graph.

Theory of operation. :func:`load_config` runs ``config.py`` with the DSL collecting
what it registers. :func:`resolve` then walks the graph from each job, depth first:

- ``default(t)`` becomes the target's default node for module type ``t``;
- ``if_impl``/``match_impl`` pick a branch from the configure-time keys (given on the
  command line, else the key's default) and remember which key chose it;
- ``impl(name, ...)`` is looked up in the registry; its parameters are checked and
  converted; each of its needs is resolved (the configuration's explicit device, else
  the target's default for the needed module type).

Two nodes with the same implementation, parameters and resolved needs are one device
(connected once, shared). A node met again while its own needs are being resolved is
a cycle. Devices are appended after their needs, so the list is in dependency order.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import dsl
from ._errors import ConfigError, MirageError, ResolutionError
from ._model import REQUIRED, Impl, Key, KeyCond, RuntimeArg, Target, convert_value
from ._plan import Plan, PlanDevice
from ._registry import Registry
from .dsl import (
    Config,
    DefaultNode,
    IfNode,
    ImplNode,
    KeyRef,
    MatchNode,
    Node,
    RefCond,
)

__all__ = ["RESERVED_ARGS", "load_config", "resolve"]

ANY = "*"
"""What a job's device may be: the job declares no module types."""

RESERVED_ARGS = frozenset({"help", "logs"})
"""Runtime arguments the generated main defines itself."""


def load_config(path: Path) -> Config:
    """Run ``config.py`` and return what it registered (exactly one unikernel)."""
    path = path.resolve()
    try:
        source = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            "no configuration here",
            where=str(path),
            hint="create a config.py that calls register(...), or pass -f FILE",
        ) from None
    try:
        code = compile(source, str(path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        text = (exc.text or "").strip()
        raise ConfigError(
            f"syntax error: {exc.msg}" + (f": {text}" if text else ""),
            where=f"{path}:{exc.lineno}",
            hint="fix the line and run mirage configure again",
        ) from None
    registered: list[Config] = []
    namespace: dict[str, Any] = {"__name__": dsl.CONFIG_MODULE, "__file__": str(path)}
    saved_path = list(sys.path)
    sys.path.insert(0, str(path.parent))
    dsl._REGISTERED, dsl._KEYS = registered, []
    try:
        exec(code, namespace)
    except MirageError:
        raise
    except Exception as exc:
        line = _config_line(exc, path)
        raise ConfigError(
            f"{type(exc).__name__}: {exc}",
            where=line,
            hint="the configuration raised this error while it was run",
        ) from None
    finally:
        dsl._REGISTERED, dsl._KEYS = None, []
        sys.path[:] = saved_path
    if not registered:
        raise ConfigError(
            "the configuration registers no unikernel",
            where=str(path),
            hint="call register('name', job(...)) at the end of config.py",
        )
    if len(registered) > 1:
        raise ConfigError(
            "the configuration calls register() more than once", where=registered[1].where
        )
    return registered[0]


def _config_line(exc: BaseException, path: Path) -> str:
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename) == path:
            line = frame.lineno
    return f"{path}:{line}" if line else str(path)


class _Resolver:
    def __init__(
        self,
        registry: Registry,
        target: Target,
        keys: Mapping[str, Key],
        values: Mapping[str, Any],
        config_path: Path,
    ) -> None:
        self.registry = registry
        self.target = target
        self.keys = keys
        self.values = values
        self.config_dir = config_path.parent
        self.used_keys: dict[str, Any] = {}
        self.devices: list[PlanDevice] = []
        self.memo: dict[tuple[Any, ...], PlanDevice] = {}
        self.stack: list[tuple[tuple[Any, ...], str]] = []
        self.ids: set[str] = set()
        self.config_file = str(config_path) + ":"
        self.places: list[str] = []

    def place(self, node: Node) -> str:
        """Where to point an error: the node's line if it is in the configuration, else
        the configuration line that led to it (a target's default, a helper)."""
        if node.where.startswith(self.config_file) or not self.places:
            return node.where
        return self.places[-1]

    # --- keys --------------------------------------------------------------------

    def key_value(self, key: Key | KeyRef) -> tuple[Key, Any]:
        if isinstance(key, KeyRef):
            found = self.keys.get(key.name)
            if found is None:
                raise ResolutionError(
                    f"unknown key {key.name!r}",
                    where=key.where,
                    hint=f"known keys: {', '.join(sorted(self.keys)) or 'none'}",
                )
            key = found
        value = self.values.get(key.name, key.default)
        self.used_keys[key.name] = value
        return key, value

    def condition(self, cond: Any) -> tuple[bool, str]:
        if isinstance(cond, Key | KeyRef):
            key, value = self.key_value(cond)
            return bool(value), f"{key.name}={value!r}"
        if isinstance(cond, KeyCond):
            _, value = self.key_value(cond.key)
            return cond.evaluate(value), cond.describe()
        assert isinstance(cond, RefCond)
        key, value = self.key_value(cond.ref)
        concrete = KeyCond(key, cond.op, cond.values)
        return concrete.evaluate(value), concrete.describe()

    # --- nodes -------------------------------------------------------------------

    def new_id(self, base: str) -> str:
        base = base.replace("-", "_")
        candidate, n = base, 1
        while candidate in self.ids:
            n += 1
            candidate = f"{base}_{n}"
        self.ids.add(candidate)
        return candidate

    def node(self, node: Node, wanted: str, context: str, chosen: list[str]) -> PlanDevice:
        pushed = node.where.startswith(self.config_file)
        if pushed:
            self.places.append(node.where)
        try:
            return self._node(node, wanted, context, chosen)
        finally:
            if pushed:
                self.places.pop()

    def _node(self, node: Node, wanted: str, context: str, chosen: list[str]) -> PlanDevice:
        if isinstance(node, DefaultNode):
            return self.default(node, wanted, context, chosen)
        if isinstance(node, IfNode):
            ok, why = self.condition(node.cond)
            branch = node.then if ok else node.otherwise
            return self.node(branch, wanted, context, [*chosen, f"{why} is {ok}"])
        if isinstance(node, MatchNode):
            key, value = self.key_value(node.key)
            branch = node.cases.get(value, node.default)
            why = f"{key.name}={value!r}" if value in node.cases else f"{key.name}: default"
            return self.node(branch, wanted, context, [*chosen, why])
        if isinstance(node, ImplNode):
            return self.impl(node, wanted, context, chosen)
        raise ResolutionError(f"{context}: {node!r} is not a device", where=node.where)

    def default(
        self, node: DefaultNode, wanted: str, context: str, chosen: list[str]
    ) -> PlanDevice:
        module_type = node.module_type
        if module_type not in self.registry.module_types:
            raise ResolutionError(
                f"{context}: unknown module type {module_type!r}",
                where=self.place(node),
                hint=f"module types: {', '.join(sorted(self.registry.module_types))}",
            )
        if not self.registry.is_a(module_type, wanted):
            raise ResolutionError(
                f"{context} needs a {wanted}, and default({module_type!r}) is not one",
                where=self.place(node),
            )
        choice = self.target.defaults.get(module_type)
        if choice is None:
            candidates = self.registry.impls_for(module_type)
            raise ResolutionError(
                f"{context}: target {self.target.name!r} has no default {module_type}",
                where=self.place(node),
                hint=(
                    f"name one in config.py with impl(...); installed: {', '.join(candidates)}"
                    if candidates
                    else f"no installed plugin provides a {module_type}"
                ),
            )
        marker = ("default", module_type)
        if any(m == marker for m, _ in self.stack):
            self.cycle(f"default {module_type}", self.place(node))
        self.stack.append((marker, f"default {module_type}"))
        try:
            return self.node(choice, wanted, context, chosen)
        finally:
            self.stack.pop()

    def cycle(self, label: str, where: str) -> None:
        chain = " -> ".join(name for _, name in self.stack)
        raise ResolutionError(
            f"the device graph has a cycle: {chain} -> {label}",
            where=where,
            hint="give one of these devices an explicit need with impl(..., needs={...})",
        )

    def impl(self, node: ImplNode, wanted: str, context: str, chosen: list[str]) -> PlanDevice:
        registered = self.registry.impls.get(node.name)
        if registered is None:
            self.missing_impl(node, context, chosen)
        assert registered is not None
        impl = registered.value
        if not self.registry.is_a(impl.provides, wanted):
            raise ResolutionError(
                f"{context} needs a {wanted}, and implementation {impl.name!r}"
                f" provides a {impl.provides}",
                where=self.place(node),
                hint=f"implementations of {wanted}: {', '.join(self.registry.impls_for(wanted))}",
            )
        if impl.targets is not None and self.target.name not in impl.targets:
            raise ResolutionError(
                f"implementation {impl.name!r} does not run on target {self.target.name!r}",
                where=self.place(node),
                hint=f"it runs on: {', '.join(impl.targets)}",
            )
        params = self.params(impl, node)
        unknown = set(node.needs) - set(impl.needs)
        if unknown:
            raise ResolutionError(
                f"implementation {impl.name!r} has no need named {sorted(unknown)[0]!r}",
                where=self.place(node),
                hint=f"its needs: {', '.join(impl.needs) or 'none'}",
            )
        marker = ("impl", impl.name, json.dumps(params, sort_keys=True, default=str))
        if any(m == marker for m, _ in self.stack):
            self.cycle(impl.name, self.place(node))
        self.stack.append((marker, impl.name))
        try:
            needs: dict[str, str] = {}
            for need, module_type in impl.needs.items():
                sub = node.needs.get(need) or DefaultNode(module_type, where=node.where)
                dep = self.node(sub, module_type, f"need {need!r} of {impl.name!r}", [])
                needs[need] = dep.id
        finally:
            self.stack.pop()
        memo_key = (*marker, tuple(sorted(needs.items())))
        device = self.memo.get(memo_key)
        if device is None:
            device = PlanDevice(
                id=self.new_id(impl.name),
                impl=impl.name,
                module_type=impl.provides,
                factory=impl.factory,
                params=params,
                needs=needs,
                runtime_args=[a.to_json() for a in impl.runtime_args],
                requires=list(impl.requires),
                build=impl.build,
                plugin=registered.plugin.name,
                dist=registered.plugin.dist,
                where=self.place(node),
                chosen_by=list(chosen),
            )
            self.memo[memo_key] = device
            self.devices.append(device)
        else:
            device.chosen_by.extend(c for c in chosen if c not in device.chosen_by)
        return device

    def missing_impl(self, node: ImplNode, context: str, chosen: list[str]) -> None:
        hint = (
            f"install {node.dist}, which provides it"
            if node.dist
            else "install the plugin that provides it"
        )
        if self.registry.failures:
            broken = ", ".join(f.plugin.describe() for f in self.registry.failures)
            hint += f"; these plugins failed to load and may provide it: {broken}"
            hint += " (run 'mirage plugins' for the errors)"
        raise ResolutionError(
            f"{context}: no installed plugin provides the implementation {node.name!r}"
            + (f" (chosen by {', '.join(chosen)})" if chosen else ""),
            where=self.place(node),
            hint=hint,
        )

    def params(self, impl: Impl, node: ImplNode) -> dict[str, Any]:
        declared = {p.name: p for p in impl.params}
        unknown = set(node.params) - set(declared)
        if unknown:
            raise ResolutionError(
                f"implementation {impl.name!r} has no parameter {sorted(unknown)[0]!r}",
                where=self.place(node),
                hint=f"its parameters: {', '.join(declared) or 'none'}",
            )
        params: dict[str, Any] = {}
        for name, param in declared.items():
            if name in node.params:
                try:
                    value = convert_value(
                        param.type, node.params[name], f"parameter {name!r} of {impl.name!r}"
                    )
                except ConfigError as exc:
                    exc.where = self.place(node)
                    raise
                if param.type == "path" and value is not None:
                    value = str((self.config_dir / value).resolve())
            elif param.default is REQUIRED:
                raise ResolutionError(
                    f"implementation {impl.name!r} needs the parameter {name!r}",
                    where=self.place(node),
                    hint=f"impl({impl.name!r}, {name}=...): {param.doc}".rstrip(": "),
                )
            else:
                value = param.default
            params[name] = value
        return params

    def job(self, job: dsl.JobNode, index: int) -> PlanDevice:
        needs = {
            name: self.node(sub, ANY, f"device {name!r} of the job", []).id
            for name, sub in job.needs.items()
        }
        device = PlanDevice(
            id=self.new_id("job" if index == 0 else f"job_{index + 1}"),
            impl=None,
            module_type="job",
            factory=job.factory,
            params={},
            needs=needs,
            runtime_args=[a.to_json() for a in job.args],
            requires=list(job.requires),
            build=None,
            plugin="",
            dist="",
            where=job.where,
        )
        self.devices.append(device)
        return device


def resolve(
    config: Config,
    registry: Registry,
    target_name: str,
    raw_keys: Mapping[str, str],
    *,
    config_path: Path,
    configure_args: list[str] | None = None,
) -> Plan:
    """Resolve ``config`` for ``target_name`` with the given key values (strings)."""
    found = registry.targets.get(target_name)
    if found is None:
        known = ", ".join(sorted(registry.targets)) or "none"
        raise ResolutionError(
            f"unknown target {target_name!r}",
            where="-t/--target",
            hint=f"installed targets: {known} (a target comes from a plugin such as mirage-unix)",
        )
    target = found.value
    keys: dict[str, Key] = {name: r.value for name, r in registry.keys.items()}
    for k in config.keys:
        if k.name in keys and keys[k.name] != k:
            raise ConfigError(
                f"key --{k.name} is declared in config.py and, differently, by"
                f" {registry.keys[k.name].plugin.describe()}",
                where=config.where,
            )
        keys[k.name] = k
    values: dict[str, Any] = {}
    for name, raw in raw_keys.items():
        key = keys.get(name)
        if name == "target":
            raise ConfigError(
                "the target is chosen with -t/--target, not as a key", where="--target"
            )
        if key is None:
            raise ConfigError(
                f"unknown key --{name}",
                where=f"--{name}",
                hint="known keys: "
                + (", ".join("--" + k for k in sorted(keys) if k != "target") or "none"),
            )
        values[name] = key.parse(raw)
    if "target" in keys:
        values["target"] = target.name
    resolver = _Resolver(registry, target, keys, values, config_path)
    jobs = [resolver.job(job, i).id for i, job in enumerate(config.jobs)]
    _check_runtime_args(resolver.devices)
    requires = sorted({*target.requires, *(r for d in resolver.devices for r in d.requires)})
    # The keys the graph consulted, and every key given on the command line (a target
    # reads its own keys, such as a VM's memory size, when it builds).
    chosen = {**resolver.used_keys, **{n: v for n, v in values.items() if n != "target"}}
    return Plan(
        name=config.name,
        target=target.name,
        config=str(config_path),
        keys=chosen,
        key_docs={n: keys[n].doc for n in chosen},
        devices=resolver.devices,
        jobs=jobs,
        requires=requires,
        configure_args=list(configure_args or []),
    )


def _check_runtime_args(devices: list[PlanDevice]) -> None:
    seen: dict[str, tuple[RuntimeArg, PlanDevice]] = {}
    for device in devices:
        for arg in device.args():
            if arg.name in RESERVED_ARGS:
                raise ResolutionError(
                    f"device {device.id!r} declares the runtime argument --{arg.name},"
                    " which the generated main defines itself",
                    where=device.where,
                )
            old = seen.get(arg.name)
            if old is not None and old[0] != arg:
                raise ResolutionError(
                    f"devices {old[1].id!r} and {device.id!r} declare the runtime argument"
                    f" --{arg.name} differently",
                    where=device.where,
                    hint="rename one of them (RuntimeArg(name=...))",
                )
            seen.setdefault(arg.name, (arg, device))
