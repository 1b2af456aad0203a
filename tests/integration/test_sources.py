"""Rules over every package's sources that no single package's tests see."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _is_dataclass(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return (isinstance(target, ast.Name) and target.id == "dataclass") or (
        isinstance(target, ast.Attribute) and target.attr == "dataclass"
    )


def docless_dataclasses(source: str, filename: str) -> list[str]:
    """``file:line Name`` of every dataclass in ``source`` without a docstring."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if (
            isinstance(node, ast.ClassDef)
            and any(map(_is_dataclass, node.decorator_list))
            and ast.get_docstring(node) is None
        ):
            found.append(f"{filename}:{node.lineno} {node.name}")
    return found


def test_the_rule_sees_every_form_of_the_decorator() -> None:
    source = (
        "import dataclasses\nfrom dataclasses import dataclass\n"
        "@dataclass\nclass A:\n    x: int\n"
        "@dataclass(frozen=True, slots=True)\nclass B:\n    x: int\n"
        "@dataclasses.dataclass\nclass C:\n    x: int\n"
        '@dataclass\nclass D:\n    """Documented."""\n\n    x: int\n'
        "class E:\n    x: int\n"
    )
    assert docless_dataclasses(source, "m.py") == ["m.py:4 A", "m.py:7 B", "m.py:10 C"]


def test_every_dataclass_has_a_docstring() -> None:
    # Without one, dataclasses makes one at import from inspect.signature(cls): work a
    # VM image repeats at every boot, under emulation tens of milliseconds per image.
    missing = []
    for path in sorted(ROOT.glob("packages/*/src/**/*.py")):
        missing += docless_dataclasses(path.read_text(), str(path.relative_to(ROOT)))
    assert missing == [], "dataclasses without a docstring:\n" + "\n".join(missing)
