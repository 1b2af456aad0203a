"""The boot cache: what the build records of the compiling that imports do
(``mirage.vm._record``), and ``/init`` taking it in (``use_boot_cache``).

Both patch ``dataclasses`` and ``re`` for the whole interpreter, so each side runs in
an interpreter of its own, as in the build and in the guest."""

from __future__ import annotations

import marshal
import subprocess
import sys
from pathlib import Path

import mirage.vm._init as init_module
import mirage.vm._record as record_module

SAMPLE = '''
import collections
import dataclasses
import re

Pair = collections.namedtuple("Pair", "left right")


@dataclasses.dataclass(frozen=True, slots=True)
class Point:
    x: int
    y: int = 0


@dataclasses.dataclass(order=True)
class Named:
    """Has a docstring."""

    name: str
    tags: list[str] = dataclasses.field(default_factory=list)


WORD = re.compile(r"(?P<word>[a-z]+)-(\\d+)", re.I)
RAW = re.compile(rb"[\\x00-\\x1f]+")
'''

TAKE_CACHE = """
import collections, dataclasses, importlib.util, re, sys
spec = importlib.util.spec_from_file_location("guest_init", {init!r})
init = importlib.util.module_from_spec(spec)
spec.loader.exec_module(init)
real_compile = re._compiler.compile
counts = init.use_boot_cache({cache!r})
"""
"""A fresh interpreter taking the cache in as ``/init`` does."""

CHECK = (
    TAKE_CACHE
    + """


def no_compiling(*args, **kwargs):
    raise AssertionError("compiled a text the cache holds")


init.compile = no_compiling  # the fallback of the dataclasses and namedtuple hooks
parsed = []
real_parse = re._parser.parse
re._parser.parse = lambda p, flags=0, *rest: (parsed.append(p), real_parse(p, flags, *rest))[1]
sys.path.insert(0, {app!r})
import sample

re._parser.parse = real_parse
init.compile = compile
assert sample.WORD.pattern not in parsed and sample.RAW.pattern not in parsed, parsed
p = sample.Point(1)
assert (p.x, p.y, repr(p)) == (1, 0, "Point(x=1, y=0)") and p == sample.Point(1, 0)
assert hash(p) == hash(sample.Point(1, 0))
try:
    p.x = 2
except dataclasses.FrozenInstanceError:
    pass
else:
    raise AssertionError("not frozen")
assert sample.Named("a") < sample.Named("b") and sample.Named("a").tags == []
assert sample.Pair(1, right=2) == (1, 2) and sample.Pair(1, 2).right == 2
# The patterns equal (same code) what re compiles without the cache.
assert sample.WORD == real_compile(sample.WORD.pattern, re.I)
assert sample.RAW == real_compile(sample.RAW.pattern, 0)
m = sample.WORD.match("Abc-12")
assert m.group("word", 2) == ("Abc", "12") and sample.WORD.groupindex == {{"word": 1}}
# A pattern or a class the cache does not hold is compiled as before.
assert re.compile("[0-9]+x").match("12x")
Other = dataclasses.make_dataclass("Other", ["a"])
assert Other(3).a == 3 and collections.namedtuple("Trio", "a b c")(1, 2, 3).c == 3
print(*counts)
"""
)


def _record(tmp_path: Path) -> tuple[Path, Path]:
    app = tmp_path / "app"
    app.mkdir()
    (app / "sample.py").write_text(SAMPLE)
    script = tmp_path / "main.py"
    script.write_text("import sample\n")
    cache = tmp_path / "boot.cache"
    subprocess.run(
        [sys.executable, "-I", "-S", record_module.__file__, str(cache), str(app), str(script)],
        check=True,
        timeout=120,
    )
    return app, cache


def test_recorded_work_is_used_and_gives_the_same_classes_and_patterns(tmp_path: Path) -> None:
    app, cache = _record(tmp_path)
    check = CHECK.format(init=init_module.__file__, cache=str(cache), app=str(app))
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", check],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    functions, patterns = map(int, result.stdout.split())
    assert functions >= 9 and patterns >= 2  # with the namedtuple's __new__


def test_without_a_readable_cache_nothing_changes(tmp_path: Path) -> None:
    import collections
    import dataclasses
    import re

    before = (
        getattr(dataclasses, "exec", None),
        getattr(collections, "eval", None),
        re._compiler.compile,  # type: ignore[attr-defined]
    )
    assert init_module.use_boot_cache(str(tmp_path / "missing")) == (0, 0)
    for junk in (b"", b"\x00garbage", b"\xe9\x03\x00\x00\x00", marshal.dumps([1, 2, 3, 4])):
        (tmp_path / "junk").write_bytes(junk)
        assert init_module.use_boot_cache(str(tmp_path / "junk")) == (0, 0)
    assert (
        getattr(dataclasses, "exec", None),
        getattr(collections, "eval", None),
        re._compiler.compile,  # type: ignore[attr-defined]
    ) == before


PATTERNS_CHECK = (
    TAKE_CACHE
    + """
sys.path.insert(0, {app!r})
import sample
assert sample.WORD == real_compile(sample.WORD.pattern, re.I)
assert sample.RAW == real_compile(sample.RAW.pattern, 0)
assert sample.WORD.match("Abc-12").group("word") == "Abc"
print(*counts)
"""
)


def _use(tmp_path: Path, app: Path, cache: Path) -> tuple[int, int]:
    check = PATTERNS_CHECK.format(init=init_module.__file__, cache=str(cache), app=str(app))
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", check], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    functions, patterns = map(int, result.stdout.split())
    return functions, patterns


def test_patterns_of_another_word_size_are_left_alone(tmp_path: Path) -> None:
    """A 32-bit CPython's pattern code has other limits (MAXREPEAT 2**31 - 1): code
    recorded by a 64-bit build must not reach it, and the reverse. The functions are
    still taken."""
    app, cache = _record(tmp_path)
    functions, build, patterns, expressions = marshal.loads(cache.read_bytes())
    assert build == record_module.sre_build() and patterns
    magic, codesize, _, maxgroups = build
    other = tmp_path / "other.cache"
    other.write_bytes(
        marshal.dumps((functions, (magic, codesize, 2**31 - 1, maxgroups), patterns, expressions))
    )
    taken_functions, taken_patterns = _use(tmp_path, app, other)
    assert taken_functions >= 9 and taken_patterns == 0


def test_a_recorded_code_this_interpreter_refuses_is_compiled_instead(tmp_path: Path) -> None:
    app, cache = _record(tmp_path)
    functions, build, patterns, expressions = marshal.loads(cache.read_bytes())
    broken = {key: (flags, [99999, *code], *rest) for key, (flags, code, *rest) in patterns.items()}
    bad = tmp_path / "bad.cache"
    bad.write_bytes(marshal.dumps((functions, build, broken, expressions)))
    assert _use(tmp_path, app, bad)[1] == len(patterns)  # the same patterns, compiled
