from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mirage.core import ConfigError, Registry, ResolutionError
from mirage.core._resolve import load_config, resolve

ECHO = """
from mirage.core.dsl import default, job, register, runtime_arg
port = runtime_arg("port", "int", default=7, doc="TCP port")
register("echo", job("app:start", stack=default("stack"), console=default("console"),
                     args=[port]))
"""


def plan_of(directory: Path, registry: Registry, target: str = "fake", **keys: str):
    config = load_config(directory / "config.py")
    return resolve(config, registry, target, keys, config_path=directory / "config.py")


def test_defaults_come_from_the_target_and_shared_nodes_are_connected_once(
    project: Callable[..., Path], registry: Registry
) -> None:
    plan = plan_of(
        project(
            """
            from mirage.core.dsl import default, impl, job, register
            register("two", job("app:start", stack=default("stack"), clock=default("clock"),
                                store=impl("fake_store", root="data")))
            """
        ),
        registry,
    )
    ids = [d.id for d in plan.devices]
    # One clock shared by the stack, the store and the job; needs before users.
    assert ids == ["fake_clock", "fake_stack", "fake_store", "job"]
    stack = plan.device("fake_stack")
    assert stack.needs == {"clock": "fake_clock"}
    assert plan.device("fake_store").needs == {"clock": "fake_clock"}
    assert plan.device("job").needs == {
        "stack": "fake_stack",
        "clock": "fake_clock",
        "store": "fake_store",
    }
    assert plan.requires == ["fake-stack>=1", "fake-target>=1"]


def test_path_parameters_are_made_absolute_and_defaults_filled(
    project: Callable[..., Path], registry: Registry
) -> None:
    directory = project(
        """
        from mirage.core.dsl import impl, job, register
        register("s", job("app:start", store=impl("fake_store", root="data")))
        """
    )
    store = plan_of(directory, registry).device("fake_store")
    assert store.params == {"root": str((directory / "data").resolve()), "size": 3}


def test_match_impl_on_a_plugin_key_and_if_impl_on_the_target(
    project: Callable[..., Path], registry: Registry
) -> None:
    directory = project(
        """
        from mirage.core.dsl import default, if_impl, impl, job, key, match_impl, register
        stack = match_impl(key("net"), {"socket": impl("other_stack")}, default=default("stack"))
        console = if_impl(key("target").eq("fake"), impl("fake_console"), impl("broken"))
        register("m", job("app:start", stack=stack, console=console))
        """
    )
    plan = plan_of(directory, registry)
    assert plan.device("job").needs["stack"] == "fake_stack"
    assert plan.keys == {"net": None, "target": "fake"}
    plan = plan_of(directory, registry, net="socket")
    assert plan.device("job").needs["stack"] == "other_stack"
    assert plan.device("other_stack").chosen_by == ["net='socket'"]
    assert "fake_console" in [d.id for d in plan.devices]


def test_config_keys_with_types(project: Callable[..., Path], registry: Registry) -> None:
    directory = project(
        """
        from mirage.core.dsl import if_impl, impl, job, key, register
        tls = key("tls", "bool", default=False, doc="use the other stack")
        register("k", job("app:start", stack=if_impl(tls, impl("other_stack"),
                                                     impl("fake_stack"))))
        """
    )
    assert plan_of(directory, registry).device("job").needs["stack"] == "fake_stack"
    assert plan_of(directory, registry, tls="yes").device("job").needs["stack"] == "other_stack"
    with pytest.raises(ConfigError, match="key --tls expects a value of type bool"):
        plan_of(directory, registry, tls="maybe")


def test_runtime_args_of_surviving_devices_only(
    project: Callable[..., Path], registry: Registry
) -> None:
    directory = project(ECHO)
    plan = plan_of(directory, registry)
    assert [a.name for a in plan.runtime_args()] == ["ipv4", "port"]
    other = project(
        """
        from mirage.core.dsl import impl, job, register
        register("o", job("app:start", stack=impl("other_stack")))
        """
    )
    assert plan_of(other, registry).runtime_args() == []


@pytest.mark.parametrize(
    ("config", "keys", "target", "error", "message"),
    [
        (
            "register('x', job('app:start', console=default('console')))",
            {},
            "nope",
            ResolutionError,
            "unknown target 'nope'",
        ),
        (
            "register('x', job('app:start', console=default('console')))",
            {"colour": "red"},
            "fake",
            ConfigError,
            "unknown key --colour",
        ),
        (
            "register('x', job('app:start', stack=default('stack')))",
            {"net": "direct"},
            "fake",
            ResolutionError,
            "no installed plugin provides the implementation 'warp_stack'",
        ),
        (
            "register('x', job('app:start', stack=default('stack')))",
            {"net": "carrier-pigeon"},
            "fake",
            ConfigError,
            "key --net does not accept 'carrier-pigeon'",
        ),
        (
            "register('x', job('app:start', stack=default('stack')))",
            {},
            "loopy",
            ResolutionError,
            "cycle: default stack -> loop_stack -> default stack",
        ),
        (
            "register('x', job('app:start', store=default('kv_ro')))",
            {},
            "fake",
            ResolutionError,
            "target 'fake' has no default kv_ro",
        ),
        (
            "register('x', job('app:start', store=impl('fake_store')))",
            {},
            "fake",
            ResolutionError,
            "needs the parameter 'root'",
        ),
        (
            "register('x', job('app:start', store=impl('fake_store', root='d', colour=1)))",
            {},
            "fake",
            ResolutionError,
            "has no parameter 'colour'",
        ),
        (
            "register('x', job('app:start', store=impl('fake_store', root='d', size='big')))",
            {},
            "fake",
            ConfigError,
            "parameter 'size' of 'fake_store' expects a value of type int",
        ),
        (
            "register('x', job('app:start', s=impl('fake_store', root='d', needs={'x': "
            "default('clock')})))",
            {},
            "fake",
            ResolutionError,
            "has no need named 'x'",
        ),
        (
            "register('x', job('app:start', s=impl('fake_stack', needs={'clock': "
            "impl('fake_console')})))",
            {},
            "fake",
            ResolutionError,
            "provides a console",
        ),
        (
            "register('x', job('app:start', c=default('teapot')))",
            {},
            "fake",
            ResolutionError,
            "unknown module type 'teapot'",
        ),
        (
            "register('x', job('app:start', stack=match_impl(key('colour'), {}, "
            "default=default('stack'))))",
            {},
            "fake",
            ResolutionError,
            "unknown key 'colour'",
        ),
    ],
)
def test_resolution_errors_name_what_is_at_fault(
    project: Callable[..., Path],
    registry: Registry,
    config: str,
    keys: dict[str, str],
    target: str,
    error: type[Exception],
    message: str,
) -> None:
    header = "from mirage.core.dsl import default, impl, job, key, match_impl, register\n"
    directory = project(header + config + "\n")
    with pytest.raises(error, match=message.replace("(", r"\(")) as info:
        plan_of(directory, registry, target, **keys)
    text = str(info.value)
    assert "Traceback" not in text
    if isinstance(info.value, ResolutionError) and "target" not in message:
        assert info.value.where and "config.py:2" in info.value.where


def test_missing_implementation_names_the_distribution_and_broken_plugins(
    project: Callable[..., Path], registry: Registry
) -> None:
    from mirage.core._registry import PluginFailure, PluginInfo

    registry.failures.append(PluginFailure(PluginInfo("warp", "mirage-warp", "9"), "boom"))
    directory = project(
        """
        from mirage.core.dsl import default, job, register
        register("x", job("app:start", stack=default("stack")))
        """
    )
    with pytest.raises(ResolutionError) as info:
        plan_of(directory, registry, net="direct")
    text = str(info.value)
    assert "config.py:3" in text
    assert "chosen by net='direct'" in text
    assert "install mirage-warp" in text
    assert "plugin 'warp' (from mirage-warp 9)" in text


def test_conflicting_runtime_args_are_refused(
    project: Callable[..., Path], registry: Registry
) -> None:
    directory = project(
        """
        from mirage.core.dsl import default, job, register, runtime_arg
        register("x", job("app:start", stack=default("stack"),
                          args=[runtime_arg("ipv4", "int", default=1)]))
        """
    )
    with pytest.raises(ResolutionError, match="declare the runtime argument --ipv4 differently"):
        plan_of(directory, registry)


@pytest.mark.parametrize(
    ("config", "line", "message"),
    [
        ("x = (\n", 1, "syntax error"),
        ("from mirage.core.dsl import register\n\nregister('x')\n", 3, "at least one job"),
        ("import os\nos.nothing_here\n", 2, "AttributeError"),
        ("from mirage.core.dsl import job\njob('no-colon')\n", 2, "must be 'module:function'"),
        (
            "from mirage.core.dsl import job, register\nregister('x', job('a:b', c=3))\n",
            2,
            "must be a device",
        ),
        ("pass\n", None, "registers no unikernel"),
    ],
)
def test_config_errors_point_at_the_line(
    project: Callable[..., Path], config: str, line: int | None, message: str
) -> None:
    directory = project(config)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(directory / "config.py")
    where = info.value.where or ""
    assert where.startswith(str((directory / "config.py").resolve()))
    if line is not None:
        assert where.endswith(f":{line}")


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no configuration here"):
        load_config(tmp_path / "config.py")
