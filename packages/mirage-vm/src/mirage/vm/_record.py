"""Work that the application's imports do at every boot and the build can do once.

Under software emulation the guest spends a good part of its import time compiling:
``dataclasses`` writes the source of each class's ``__init__``, ``__repr__``,
``__eq__``, ... and compiles it with ``exec``, ``collections.namedtuple`` compiles its
``__new__`` with ``eval``, and ``re`` compiles every pattern a module compiles at import
time. Code run for the first time is translated first under emulation, so the first
compile at boot also pays for translating CPython's compiler. The build runs this file
as a script in an isolated interpreter (standard library only, like the trace of
imports) that imports the application the way ``/init`` does, with all of it recorded:

- every source text ``dataclasses`` executes and ``namedtuple`` evaluates, with its
  compiled code object (compiled as ``exec`` and ``eval`` do it there: ``<string>``, no
  inherited future flags);
- every ``(pattern, flags)`` ``re`` compiles, with the arguments ``_sre.compile`` takes
  (flags, code, group count, group names), kept only if ``_sre.compile`` with them
  gives a pattern equal (same code) to the one ``re`` compiled.

It writes them with ``marshal``, with what the pattern code depends on
(:func:`sre_build`: ``_sre.MAGIC``, the version of the code, and the word size and
limits the code embeds: a 32-bit CPython's ``MAXREPEAT`` differs from a 64-bit one's);
the image keeps the file as ``/etc/mirage.cache``, which ``/init`` takes in before
importing anything else (:func:`mirage.vm._init.use_boot_cache`). A text or pattern
the guest meets that is not in the file is compiled as before, so the file only saves
time. The code objects are as portable as the image's bytecode (the build's CPython
3.11 compiles both).

Usage: ``python -I -S _record.py OUT PATHS SCRIPT...`` (``PATHS`` joined with
``os.pathsep``, put ahead on ``sys.path``; each script is run as ``runpy`` does, under
another name than ``__main__``).
"""

from __future__ import annotations

from typing import Any

Functions = dict[str, Any]
Patterns = dict[
    tuple[str | bytes, int], tuple[int, list[int], int, dict[str, int], tuple[Any, ...]]
]


def record() -> tuple[Functions, Patterns, Functions]:
    """From now on, record what ``dataclasses`` and ``collections.namedtuple`` compile
    and what ``re`` compiles into the dictionaries returned (filled as the imports go):
    function sources, patterns, expressions."""
    import _sre  # type: ignore[import-not-found]
    import builtins
    import collections
    import dataclasses
    import re._compiler as compiler  # type: ignore[import-not-found]
    import re._parser as parser  # type: ignore[import-not-found]

    functions: Functions = {}
    patterns: Patterns = {}
    run = builtins.exec
    dataclasses_globals = vars(dataclasses)

    def exec_recording(source: Any, globals: Any = None, locals: Any = None, /) -> None:
        if isinstance(source, str):
            code = compile(source, "<string>", "exec", dont_inherit=True)
            functions[source] = code
            source = code
        run(source, dataclasses_globals if globals is None else globals, locals)

    dataclasses.exec = exec_recording  # type: ignore[attr-defined]
    expressions: Functions = {}
    evaluate = builtins.eval
    collections_globals = vars(collections)

    def eval_recording(source: Any, globals: Any = None, locals: Any = None, /) -> Any:
        # namedtuple's __new__: eval(lambda_text, namespace).
        if isinstance(source, str):
            code = compile(source, "<string>", "eval", dont_inherit=True)
            expressions[source] = code
            source = code
        return evaluate(source, collections_globals if globals is None else globals, locals)

    collections.eval = eval_recording  # type: ignore[attr-defined]
    original = compiler.compile

    def compile_recording(p: Any, flags: int = 0) -> Any:
        pattern = original(p, flags)
        if isinstance(p, (str, bytes)) and not flags & compiler.SRE_FLAG_DEBUG:
            parsed = parser.parse(p, flags)
            code = compiler._code(parsed, flags)
            groupindex = dict(parsed.state.groupdict)
            indexgroup: list[str | None] = [None] * parsed.state.groups
            for name, index in groupindex.items():
                indexgroup[index] = name
            args = (
                int(flags | parsed.state.flags),
                [int(c) for c in code],  # some are named int constants
                parsed.state.groups - 1,
                groupindex,
                tuple(indexgroup),
            )
            if _sre.compile(p, *args) == pattern:
                patterns[(p, int(flags))] = args
        return pattern

    compiler.compile = compile_recording
    return functions, patterns, expressions


def sre_build() -> tuple[int, int, int, int]:
    """What compiled pattern code is valid for: the code's version, the size of a
    code word, and the repeat and group limits written into the code (a 32-bit
    CPython's differ from a 64-bit one's)."""
    import _sre

    return (_sre.MAGIC, _sre.CODESIZE, _sre.MAXREPEAT, _sre.MAXGROUPS)


def dump(path: str, functions: Functions, patterns: Patterns, expressions: Functions) -> None:
    import marshal

    with open(path, "wb") as f:
        marshal.dump((functions, sre_build(), patterns, expressions), f)


def main(argv: list[str]) -> int:
    import os
    import runpy
    import sys

    out, paths, *scripts = argv
    sys.path[:0] = [p for p in paths.split(os.pathsep) if p]
    functions, patterns, expressions = record()
    for script in scripts:
        runpy.run_path(script, run_name="__mirage_record__")
    dump(out, functions, patterns, expressions)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
