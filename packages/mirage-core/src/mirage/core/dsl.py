"""The configuration language of ``config.py``.

A configuration declares a job (the application's ``start`` function and the devices
it needs) and registers it under a name::

    from mirage.core.dsl import default, job, register, runtime_arg

    port = runtime_arg("port", "int", default=7, doc="TCP port to listen on")
    register("echo", job("unikernel:start", stack=default("stack"), args=[port]))

Devices are nodes of a graph:

- ``default("stack")``: whatever the target (and its keys) choose for a module type;
- ``impl("directory", root="htdocs")``: one named implementation, with its
  configure-time parameters and, optionally, explicit devices for its needs;
- ``if_impl(cond, a, b)`` and ``match_impl(key, {value: node}, default=node)``: a
  choice made by configure-time keys (``key("net").eq("direct")``).

Every node remembers the line of ``config.py`` that made it, for error messages.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from types import FrameType
from typing import Any

from ._errors import ConfigError
from ._model import REQUIRED, Key, KeyCond, RuntimeArg

__all__ = [
    "Config",
    "DefaultNode",
    "IfNode",
    "ImplNode",
    "JobNode",
    "Key",
    "KeyRef",
    "MatchNode",
    "Node",
    "default",
    "if_impl",
    "impl",
    "job",
    "key",
    "match_impl",
    "register",
    "runtime_arg",
]


CONFIG_MODULE = "__mirage_config__"


def _caller() -> str:
    """``file:line`` of the line in ``config.py`` that made the node.

    Outside a configuration (a plugin declaring a target's defaults), the first frame
    outside ``mirage.core``.
    """
    frame: FrameType | None = sys._getframe(1)
    first: str | None = None
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module == CONFIG_MODULE:
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        if first is None and not module.startswith("mirage.core."):
            first = f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return first or "<unknown>"


class _Data:
    """A small record: slots, keyword or positional construction, a readable repr.

    (Plain classes rather than dataclasses: ``mirage plugins`` loads every plugin, and
    each dataclass costs a fraction of a millisecond to create at import.)
    """

    __slots__: tuple[str, ...] = ()

    def __repr__(self) -> str:
        fields = [n for cls in type(self).__mro__ for n in getattr(cls, "__slots__", ())]
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in fields if n != "where")
        return f"{type(self).__name__}({shown})"


class Node(_Data):
    """A device of the configuration graph; ``where`` is the line that made it."""

    __slots__ = ("where",)

    def __init__(self, *, where: str = "") -> None:
        self.where = where


class DefaultNode(Node):
    __slots__ = ("module_type",)

    def __init__(self, module_type: str, *, where: str = "") -> None:
        super().__init__(where=where)
        self.module_type = module_type


class ImplNode(Node):
    __slots__ = ("dist", "name", "needs", "params")

    def __init__(
        self,
        name: str,
        params: Mapping[str, Any],
        needs: Mapping[str, Node],
        dist: str | None = None,
        *,
        where: str = "",
    ) -> None:
        super().__init__(where=where)
        self.name = name
        self.params = params
        self.needs = needs
        self.dist = dist


class KeyRef(_Data):
    """A key declared by a plugin, referred to by name (``key("net")``)."""

    __slots__ = ("name", "where")

    def __init__(self, name: str, where: str = "") -> None:
        self.name = name
        self.where = where

    def eq(self, value: object) -> RefCond:
        return RefCond(self, "eq", (value,))

    def ne(self, value: object) -> RefCond:
        return RefCond(self, "ne", (value,))

    def is_in(self, *values: object) -> RefCond:
        return RefCond(self, "in", values)


class RefCond(_Data):
    __slots__ = ("op", "ref", "values")

    def __init__(self, ref: KeyRef, op: str, values: tuple[Any, ...]) -> None:
        self.ref = ref
        self.op = op
        self.values = values


Cond = Key | KeyRef | KeyCond | RefCond


class IfNode(Node):
    __slots__ = ("cond", "otherwise", "then")

    def __init__(self, cond: Cond, then: Node, otherwise: Node, *, where: str = "") -> None:
        super().__init__(where=where)
        self.cond = cond
        self.then = then
        self.otherwise = otherwise


class MatchNode(Node):
    __slots__ = ("cases", "default", "key")

    def __init__(
        self, key: Key | KeyRef, cases: Mapping[Any, Node], default: Node, *, where: str = ""
    ) -> None:
        super().__init__(where=where)
        self.key = key
        self.cases = cases
        self.default = default


class JobNode(Node):
    """The application: ``factory`` is ``module:function``, an ``async def`` that
    receives each device and each runtime argument by keyword."""

    __slots__ = ("args", "factory", "needs", "requires")

    def __init__(
        self,
        factory: str,
        needs: Mapping[str, Node],
        args: tuple[RuntimeArg, ...] = (),
        requires: tuple[str, ...] = (),
        *,
        where: str = "",
    ) -> None:
        super().__init__(where=where)
        self.factory = factory
        self.needs = needs
        self.args = args
        self.requires = requires


class Config(_Data):
    """What one ``config.py`` registered."""

    __slots__ = ("jobs", "keys", "name", "where")

    def __init__(self, name: str, jobs: list[JobNode], keys: list[Key], where: str) -> None:
        self.name = name
        self.jobs = jobs
        self.keys = keys
        self.where = where


# The loader points this at a fresh list while it runs a config.py.
_REGISTERED: list[Config] | None = None
_KEYS: list[Key] = []


def _check_node(value: object, what: str, where: str) -> Node:
    if not isinstance(value, Node) or isinstance(value, JobNode):
        raise ConfigError(
            f"{what} must be a device (default(...), impl(...), if_impl or match_impl),"
            f" not {value!r}",
            where=where,
        )
    return value


def default(module_type: str) -> DefaultNode:
    """The target's choice of implementation for ``module_type``."""
    return DefaultNode(module_type, where=_caller())


def impl(
    name: str,
    /,
    *,
    needs: Mapping[str, Node] | None = None,
    dist: str | None = None,
    **params: Any,
) -> ImplNode:
    """The implementation registered as ``name``, with configure-time ``params``.

    ``needs`` names devices for some of its needs (the others take the target's
    defaults); ``dist`` is the distribution that provides it, for error messages.
    """
    where = _caller()
    for need, node in (needs or {}).items():
        _check_node(node, f"need {need!r} of impl({name!r})", where)
    return ImplNode(name, dict(params), dict(needs or {}), dist, where=where)


def _check_cond(cond: object, where: str) -> Cond:
    if not isinstance(cond, Key | KeyRef | KeyCond | RefCond):
        raise ConfigError(
            f"the condition of if_impl must be a key or key.eq(...), not {cond!r}", where=where
        )
    return cond


def if_impl(cond: Cond, then: Node, otherwise: Node) -> IfNode:
    """``then`` if the configure-time condition holds, else ``otherwise``."""
    where = _caller()
    return IfNode(
        _check_cond(cond, where),
        _check_node(then, "the first branch of if_impl", where),
        _check_node(otherwise, "the second branch of if_impl", where),
        where=where,
    )


def match_impl(k: Key | KeyRef, cases: Mapping[Any, Node], *, default: Node) -> MatchNode:
    """The node of ``cases`` that the key's value selects, else ``default``."""
    where = _caller()
    if not isinstance(k, Key | KeyRef):
        raise ConfigError(f"match_impl needs a key, not {k!r}", where=where)
    for value, node in cases.items():
        _check_node(node, f"case {value!r} of match_impl", where)
    return MatchNode(
        k, dict(cases), _check_node(default, "the default of match_impl", where), where=where
    )


def key(
    name: str,
    type: str | None = None,
    *,
    default: Any = None,
    doc: str = "",
    choices: Iterable[Any] | None = None,
) -> Key | KeyRef:
    """Declare a configure-time key, or (with only a name) refer to a plugin's key."""
    where = _caller()
    if type is None and default is None and not doc and choices is None:
        return KeyRef(name, where)
    try:
        k = Key(name, type or "str", default, doc, tuple(choices) if choices else None)
    except ValueError as exc:
        raise ConfigError(str(exc), where=where) from None
    _KEYS.append(k)
    return k


def runtime_arg(
    name: str, type: str = "str", *, default: Any = REQUIRED, doc: str = "", dest: str = ""
) -> RuntimeArg:
    """An option of the built artifact, passed to the job by keyword."""
    try:
        return RuntimeArg(name, type, default, doc, dest)
    except ValueError as exc:
        raise ConfigError(str(exc), where=_caller()) from None


def job(
    factory: str,
    /,
    *,
    args: Iterable[RuntimeArg] = (),
    requires: Iterable[str] = (),
    **needs: Node,
) -> JobNode:
    """The application: ``factory`` (``"unikernel:start"``) receives ``needs`` and ``args``."""
    where = _caller()
    if not isinstance(factory, str) or ":" not in factory:
        raise ConfigError(
            f"job factory {factory!r} must be 'module:function'",
            where=where,
            hint="for example job('unikernel:start', console=default('console'))",
        )
    for name, node in needs.items():
        _check_node(node, f"device {name!r} of the job", where)
    return JobNode(factory, dict(needs), tuple(args), tuple(requires), where=where)


def register(name: str, *jobs: JobNode) -> None:
    """Register the unikernel ``name`` made of ``jobs`` (run concurrently)."""
    where = _caller()
    if _REGISTERED is None:
        raise ConfigError(
            "register() is only meaningful in a config.py run by the mirage tool", where=where
        )
    if not jobs:
        raise ConfigError(f"register({name!r}) needs at least one job", where=where)
    for j in jobs:
        if not isinstance(j, JobNode):
            raise ConfigError(f"register() takes jobs made by job(...), not {j!r}", where=where)
    _REGISTERED.append(Config(name, list(jobs), list(_KEYS), where))
