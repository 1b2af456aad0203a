"""``generic_kv_ro`` in a configuration."""

from __future__ import annotations

from mirage.core.dsl import CONFIG_MODULE, IfNode, ImplNode, KeyRef, MatchNode, RefCond, key
from mirage.kv.config import generic_kv_ro


def test_generic_kv_ro_matches_the_kv_ro_key() -> None:
    node = generic_kv_ro("htdocs")
    assert isinstance(node, MatchNode)
    assert isinstance(node.key, KeyRef)
    assert node.key.name == "kv-ro"
    assert set(node.cases) == {"crunch", "directory"}
    for name, case in node.cases.items():
        assert isinstance(case, ImplNode)
        assert (case.name, dict(case.params), case.dist) == (name, {"root": "htdocs"}, "mirage-kv")
    # Unset: the directory on the unix target, embedded everywhere else.
    unset = node.default
    assert isinstance(unset, IfNode)
    assert isinstance(unset.cond, RefCond)
    assert (unset.cond.ref.name, unset.cond.op, unset.cond.values) == ("target", "eq", ("unix",))
    assert isinstance(unset.then, ImplNode) and unset.then.name == "directory"
    assert isinstance(unset.otherwise, ImplNode) and unset.otherwise.name == "crunch"


def test_nodes_point_at_the_configuration() -> None:
    source = "from mirage.kv.config import generic_kv_ro\n\nnode = generic_kv_ro('htdocs')\n"
    scope: dict[str, object] = {"__name__": CONFIG_MODULE}
    exec(compile(source, "config.py", "exec"), scope)
    node = scope["node"]
    assert isinstance(node, MatchNode)
    assert node.where == "config.py:3"
    assert node.default.where == "config.py:3"


def test_generic_kv_ro_takes_another_key() -> None:
    node = generic_kv_ro("data", choice=key("data-store"))
    assert isinstance(node.key, KeyRef)
    assert node.key.name == "data-store"


def test_generic_kv_ro_with_a_default() -> None:
    node = generic_kv_ro("site", default="crunch")
    assert isinstance(node.default, ImplNode) and node.default.name == "crunch"
    import pytest

    with pytest.raises(ValueError, match="default must be"):
        generic_kv_ro("site", default="tar")
