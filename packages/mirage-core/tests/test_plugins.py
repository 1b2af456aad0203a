from __future__ import annotations

import types

import pytest

from mirage.core import (
    Impl,
    Key,
    ModuleType,
    RegistrationError,
    Registry,
    Target,
    _builtin,
    hookimpl,
)
from mirage.core import plugins as plugins_module
from mirage.core._entrypoints import EntryPoint, find_entry_points
from mirage.core.plugins import load_registry


def plugin(**hooks: object) -> types.SimpleNamespace:
    return types.SimpleNamespace(**{name: hookimpl(fn) for name, fn in hooks.items()})  # type: ignore[arg-type]


def add_impls(*impls: Impl):
    def mirage_register_impls(registry: Registry) -> None:
        for i in impls:
            registry.add_impl(i)

    return mirage_register_impls


def test_duplicate_impl_names_the_first_plugin() -> None:
    a = plugin(mirage_register_impls=add_impls(Impl("x", "flow", "m:X")))
    b = plugin(mirage_register_impls=add_impls(Impl("x", "flow", "m:Y")))
    registry = load_registry(entrypoints=False, plugins=[("core", _builtin), ("a", a), ("b", b)])
    assert list(registry.impls) == ["x"]
    (failure,) = registry.failures
    assert failure.plugin.name in {"a", "b"}
    assert "already registered by plugin" in failure.error


def test_a_failing_plugin_is_withdrawn_and_the_others_load() -> None:
    def mirage_register_impls(registry: Registry) -> None:
        registry.add_impl(Impl("half", "flow", "m:Half"))
        raise RuntimeError("boom")

    bad = plugin(mirage_register_impls=mirage_register_impls)
    good = plugin(mirage_register_impls=add_impls(Impl("good", "flow", "m:Good")))
    registry = load_registry(
        entrypoints=False, plugins=[("core", _builtin), ("bad", bad), ("good", good)]
    )
    assert set(registry.impls) == {"good"}
    assert [p.name for p in registry.plugins] == ["core", "good"]
    (failure,) = registry.failures
    assert failure.plugin.name == "bad"
    assert "mirage_register_impls failed: RuntimeError: boom" in failure.error


def test_unknown_module_type_is_refused() -> None:
    bad = plugin(mirage_register_impls=add_impls(Impl("x", "teapot", "m:X")))
    registry = load_registry(entrypoints=False, plugins=[("core", _builtin), ("bad", bad)])
    assert "unknown module type 'teapot'" in registry.failures[0].error


def test_a_plugin_may_add_a_module_type_used_by_another() -> None:
    def mirage_register_module_types(registry: Registry) -> None:
        registry.add_module_type(ModuleType("teapot", "tea:Pot"))

    types_plugin = plugin(mirage_register_module_types=mirage_register_module_types)
    user = plugin(mirage_register_impls=add_impls(Impl("kettle", "teapot", "tea:Kettle")))
    # The user comes first: module types are still registered before impls.
    registry = load_registry(
        entrypoints=False, plugins=[("core", _builtin), ("user", user), ("tea", types_plugin)]
    )
    assert not registry.failures
    assert registry.impls["kettle"].plugin.name == "user"


def test_a_misspelled_hook_is_reported() -> None:
    def mirage_register_impl(registry: Registry) -> None:
        pass

    bad = plugin(mirage_register_impl=mirage_register_impl)
    registry = load_registry(entrypoints=False, plugins=[("core", _builtin), ("bad", bad)])
    assert "mirage_register_impl, which is not a mirage hook" in registry.failures[0].error


def test_hooks_must_return_none() -> None:
    bad = plugin(mirage_register_keys=lambda registry: ["net"])
    registry = load_registry(entrypoints=False, plugins=[("core", _builtin), ("bad", bad)])
    assert "must return None" in registry.failures[0].error


def test_equal_keys_may_be_declared_twice_and_different_ones_not() -> None:
    registry = Registry()
    registry.add_key(Key("colour", "str", "red"))
    registry.add_key(Key("colour", "str", "red"))
    with pytest.raises(RegistrationError, match="already declared differently"):
        registry.add_key(Key("colour", "str", "blue"))


def test_registry_checks_what_it_is_given() -> None:
    registry = Registry()
    with pytest.raises(RegistrationError, match="expects an Impl"):
        registry.add_impl("nope")  # type: ignore[arg-type]
    with pytest.raises(RegistrationError, match="unknown module type 'flow'"):
        registry.add_target(Target("t", "m:b", "m:r", defaults={"flow": None}))  # type: ignore[dict-item]


def test_declarations_validate_names() -> None:
    with pytest.raises(ValueError, match="must be an import path"):
        Impl("x", "flow", "no colon")
    with pytest.raises(ValueError, match="lower-case"):
        Impl("Bad Name", "flow", "m:X")
    with pytest.raises(ValueError, match="twice"):
        Impl(
            "x",
            "flow",
            "m:X",
            needs={"a": "flow"},
            params=[__import__("mirage.core", fromlist=["Param"]).Param("a")],
        )


def test_entry_point_that_fails_to_import_is_reported_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    eps = [
        EntryPoint("core", "mirage.core._builtin", "mirage-core", "0.1.0"),
        EntryPoint("broken", "no_such_module_for_mirage_tests", "broken-dist", "1.0"),
    ]
    monkeypatch.setattr(plugins_module, "find_entry_points", lambda group: eps)
    registry = load_registry()
    assert [p.name for p in registry.plugins] == ["core"]
    (failure,) = registry.failures
    assert failure.plugin.describe() == "plugin 'broken' (from broken-dist 1.0)"
    assert "ModuleNotFoundError" in failure.error


def test_disable_and_extra_plugins_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIRAGE_PLUGINS", "fakes")
    registry = load_registry()
    assert "fake" in registry.targets
    monkeypatch.setenv("MIRAGE_DISABLE_PLUGINS", "fakes")
    assert "fake" not in load_registry().targets


def test_registered_by_lists_what_each_plugin_added(registry: Registry) -> None:
    (fakes,) = [p for p in registry.plugins if p.name == "fakes"]
    what = registry.registered_by(fakes)
    assert what["targets"] == ["bare", "fake", "loopy"]
    assert "fake_stack" in what["impls"]


def test_fast_entry_point_scan_agrees_with_importlib_metadata() -> None:
    from importlib.metadata import entry_points

    ours = {(e.name, e.value, e.dist) for e in find_entry_points("mirage")}
    theirs = {
        (e.name, e.value, e.dist.name if e.dist else "") for e in entry_points(group="mirage")
    }
    assert ours == theirs


def test_entry_point_files_are_parsed_like_setuptools_writes_them(tmp_path) -> None:  # type: ignore[no-untyped-def]
    info = tmp_path / "Some_Dist-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: some-dist\nVersion: 1.2\n\n")
    (info / "entry_points.txt").write_text(
        "[console_scripts]\nx = a:b\n\n[mirage]\n# a comment\nfoo = pkg.mod:obj [extra]\n"
        "bar=pkg.other\n"
    )
    (tmp_path / "some_dist-9.9.dist-info").mkdir()  # shadowed: the first one wins
    found = find_entry_points("mirage", [str(tmp_path)])
    assert [(e.name, e.value, e.dist, e.version) for e in found] == [
        ("foo", "pkg.mod:obj", "some-dist", "1.2"),
        ("bar", "pkg.other", "some-dist", "1.2"),
    ]
