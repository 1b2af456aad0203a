"""The image's bytecode bundle (mirage.vm._bundle) and the build's choice of what
goes into it. The importer runs in a fresh interpreter, as /init runs it."""

from __future__ import annotations

import json
import marshal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mirage.vm import _bundle
from mirage.vm._image import _bundle_bytecode, _module_name, _pyc

SOURCES = {
    "pkg/__init__.py": "VALUE = 'package'\n",
    "pkg/sub.py": "from . import VALUE\nFROM_PACKAGE = VALUE\n",
    "pkg/deep/__init__.py": "",
    "pkg/deep/leaf.py": "import pkg.sub\nLEAF = pkg.sub.FROM_PACKAGE + '/leaf'\n",
    "alone.py": "import sys\nif __name__ == '__main__':\n    print('ran as main', sys.argv[1:])\n",
}


def _code(source: str, origin: str) -> bytes:
    return marshal.dumps(compile(source, origin, "exec", dont_inherit=True))


def _write_bundle(
    folder: Path, sources: dict[str, str] = SOURCES, deferred: set[str] | None = None
) -> Path:
    modules = {}
    for rel, source in sources.items():
        name, is_package = _module_name(rel)
        origin = str(folder / rel)[:-3] + ".pyc"
        modules[name] = (is_package, origin, _code(source, str(folder / rel)))
    path = folder / "bytecode"
    path.write_bytes(_bundle.pack(modules, deferred or ()))
    return path


def _run(folder: Path, script: str) -> subprocess.CompletedProcess[str]:
    """``script`` in an isolated interpreter whose only module path is ``folder``,
    after installing the bundle from ``mirage.vm._bundle``'s file (as /init does)."""
    preamble = textwrap.dedent(
        f"""
        import sys
        sys.path[:] = [{str(folder)!r}] + [p for p in sys.path if 'python3' in p]
        exec(compile(open({_bundle.__file__!r}).read(), '_mirage_bundle', 'exec'), g := {{}})
        bundle = g['install']({str(folder / "bytecode")!r})
        """
    )
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", preamble + textwrap.dedent(script)],
        capture_output=True,
        text=True,
        check=False,
        cwd=folder,
    )


def test_modules_packages_and_relative_imports_load_from_the_bundle(tmp_path: Path) -> None:
    _write_bundle(tmp_path)
    # A file left beside the package's code (an extension module, in an image) is
    # still found by the path finder through the package's __path__.
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "on_disk.py").write_text("WHERE = 'disk'\n")
    ran = _run(
        tmp_path,
        """
        import json
        import pkg.deep.leaf, pkg.on_disk
        out = {
            "leaf": pkg.deep.leaf.LEAF,
            "disk": pkg.on_disk.WHERE,
            "file": pkg.sub.__file__,
            "path": list(pkg.__path__),
            "deep_path": list(pkg.deep.__path__),
            "loader_is_bundle": pkg.sub.__loader__ is bundle,
            "disk_loader": type(pkg.on_disk.__loader__).__name__,
            "package": pkg.deep.leaf.__package__,
            "cached": pkg.sub.__cached__,
            "first": sys.meta_path[0] is bundle,
        }
        print(json.dumps(out))
        """,
    )
    assert ran.returncode == 0, ran.stderr
    out = json.loads(ran.stdout)
    assert out["leaf"] == "package/leaf" and out["disk"] == "disk"
    assert out["file"] == str(tmp_path / "pkg" / "sub.pyc") == out["cached"]
    assert out["path"] == [str(tmp_path / "pkg")]
    assert out["deep_path"] == [str(tmp_path / "pkg" / "deep")]
    assert out["loader_is_bundle"] and out["first"]
    assert out["disk_loader"] == "SourceFileLoader"
    assert out["package"] == "pkg.deep"


def test_the_loader_answers_runpy_and_importlib(tmp_path: Path) -> None:
    _write_bundle(tmp_path)
    ran = _run(
        tmp_path,
        """
        import importlib.util, runpy
        spec = importlib.util.find_spec("pkg.sub")
        assert spec.loader is bundle and spec.origin.endswith("pkg/sub.pyc"), spec
        assert bundle.is_package("pkg") and not bundle.is_package("pkg.sub")
        assert bundle.get_source("pkg.sub") is None
        assert bundle.get_filename("alone").endswith("alone.pyc")
        assert importlib.util.find_spec("not_there") is None
        try:
            bundle.get_code("not_there")
        except ImportError as exc:
            assert "not_there" in str(exc)
        else:
            raise AssertionError("no error")
        sys.argv = ["alone", "x"]
        runpy.run_module("alone", run_name="__main__", alter_sys=True)
        """,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "ran as main ['x']"


def test_no_bundle_file_installs_nothing(tmp_path: Path) -> None:
    assert _bundle.install(str(tmp_path / "none")) is None


def test_a_bundle_for_another_cpython_is_refused_by_name(tmp_path: Path) -> None:
    data = bytearray(_write_bundle(tmp_path).read_bytes())
    data[8:12] = b"\x00\x01\r\n"
    with pytest.raises(ImportError, match="another CPython"):
        _bundle.unpack(bytes(data))


def test_an_index_that_points_outside_the_code_is_refused(tmp_path: Path) -> None:
    index = marshal.dumps({"m": (False, "/m.pyc", 0, 10, False)})
    data = _bundle.HEAD + _bundle._magic() + len(index).to_bytes(8, "little") + index + b"x"
    with pytest.raises(ImportError, match="damaged"):
        _bundle.unpack(data)


@given(st.binary(max_size=200))
def test_unpack_is_total(data: bytes) -> None:
    for candidate in (data, _bundle.HEAD + _bundle._magic() + data):
        try:
            index, code = _bundle.unpack(candidate)
        except ImportError:
            continue
        for _is_package, _origin, offset, length, _deferred in index.values():
            assert 0 <= offset <= offset + length <= len(code)


@given(
    st.dictionaries(
        st.from_regex(r"[a-z_][a-z0-9_]{0,8}(\.[a-z_][a-z0-9_]{0,8}){0,2}", fullmatch=True),
        st.tuples(st.booleans(), st.text(max_size=20), st.binary(max_size=50)),
        max_size=8,
    )
)
def test_pack_and_unpack_agree(modules: dict[str, tuple[bool, str, bytes]]) -> None:
    deferred = set(list(modules)[::2])
    index, code = _bundle.unpack(_bundle.pack(modules, deferred))
    assert set(index) == set(modules)
    for name, (is_package, origin, data) in modules.items():
        got = index[name]
        assert got[:2] == (is_package, origin)
        assert got[4] == (name in deferred)
        assert bytes(code[got[2] : got[2] + got[3]]) == data


def test_the_build_keeps_startup_modules_and_doubled_names_as_files() -> None:
    def entry(folder: str, rel: str) -> tuple[str, tuple[str, bytes]]:
        return f"{folder}/{rel[:-3]}.pyc", (folder, _pyc(b"X = 1\n", f"/{folder}/{rel}"))

    stdlib = "usr/lib/python3.11"
    bytecode = dict(
        [
            entry(stdlib, "json/__init__.py"),
            entry(stdlib, "json/decoder.py"),
            entry(stdlib, "encodings/__init__.py"),
            entry(stdlib, "encodings/idna.py"),
            entry(stdlib, "os.py"),
            entry(stdlib, "queue.py"),
            entry("app", "queue.py"),  # an application module named as a stdlib one
            entry("app", "main.py"),
        ]
    )
    bundled = _bundle_bytecode(bytecode)
    assert sorted(bundled) == ["json", "json.decoder", "main"]
    assert bundled["json"][:2] == (True, f"/{stdlib}/json/__init__.pyc")
    assert bundled["main"][:2] == (False, "/app/main.pyc")
    assert marshal.loads(bundled["main"][2]).co_filename == "/app/main.py"
    assert sorted(bytecode) == [
        "app/queue.pyc",
        f"{stdlib}/encodings/__init__.pyc",
        f"{stdlib}/encodings/idna.pyc",
        f"{stdlib}/os.pyc",
        f"{stdlib}/queue.pyc",
    ]


def test_read_cpio_reads_what_the_writer_wrote() -> None:
    import io

    from mirage.vm._cpio import CpioWriter, read_cpio

    out = io.BytesIO()
    writer = CpioWriter(out)
    writer.directory("etc")
    writer.file("etc/a", b"abc", 0o600)
    writer.symlink("lib64", "lib")
    writer.close()
    entries = read_cpio(out.getvalue() + b"\0" * 8 + out.getvalue())  # two archives
    assert entries["etc/a"] == (0o100600, b"abc")
    assert entries["lib64"][1] == b"lib" and set(entries) == {"etc", "etc/a", "lib64"}


@given(st.binary(max_size=300), st.integers(0, 300))
def test_read_cpio_is_total(noise: bytes, cut: int) -> None:
    import io

    from mirage.vm._cpio import CpioWriter, read_cpio

    out = io.BytesIO()
    writer = CpioWriter(out)
    writer.file("f", noise)
    writer.close()
    for data in (noise, b"070701" + noise, out.getvalue()[:cut]):
        try:
            read_cpio(data)
        except ValueError:
            pass


def test_a_bundle_file_cut_short_is_refused_and_one_whole_reads_lazily(tmp_path: Path) -> None:
    path = _write_bundle(tmp_path)
    whole = path.read_bytes()
    opened = _bundle.Bundle.open(str(path))
    assert opened.is_package("pkg") and opened.get_code("pkg.sub").co_filename.endswith("sub.py")
    for cut in (5, 19, 30, len(whole) - 1):
        path.write_bytes(whole[:cut])
        with pytest.raises(ImportError):
            _bundle.Bundle.open(str(path))


def test_install_can_leave_packages_to_the_path(tmp_path: Path) -> None:
    _write_bundle(tmp_path)
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "pkg").mkdir()
    (tmp_path / "own" / "pkg" / "__init__.py").write_text("VALUE = 'own copy'\n")
    ran = _run(
        tmp_path,
        f"""
        bundle.index.clear()  # the first install's, taken back
        sys.meta_path.remove(bundle)
        sys.path.insert(0, {str(tmp_path / "own")!r})
        again = g['install']({str(tmp_path / "bytecode")!r}, skip=("pkg",))
        import pkg, alone
        print(pkg.VALUE, alone.__loader__ is again, sorted(again.index))
        """,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["own", "copy", "True", "['alone']"]


def test_imports_go_on_after_the_application_closes_every_descriptor(tmp_path: Path) -> None:
    _write_bundle(tmp_path)
    ran = _run(
        tmp_path,
        """
        import os
        os.closerange(3, 1024)  # as a daemonising application may
        import pkg.deep.leaf
        print(pkg.deep.leaf.LEAF)
        """,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "package/leaf"


def test_a_bundled_packages_resources_are_the_files_in_its_folder(tmp_path: Path) -> None:
    _write_bundle(tmp_path)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "data.txt").write_text("beside the package\n")
    ran = _run(
        tmp_path,
        """
        import importlib.resources
        import pkg
        folder = importlib.resources.files("pkg")
        print(folder.joinpath("data.txt").read_text().strip())
        print(sorted(p.name for p in folder.iterdir()))
        print(importlib.resources.read_text("pkg", "data.txt").strip())
        print(bundle.get_resource_reader("pkg.sub"))
        """,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == [
        "beside the package",
        "['data.txt']",
        "beside the package",
        "None",
    ]


DEFERRED_SOURCES = {
    # Each appends its name to ran.RUNS when its code runs.
    "ran.py": "RUNS = []\n",
    "later.py": (
        "import ran\nran.RUNS.append('later')\nVALUE = 42\ndef twice(x):\n    return 2 * x\n"
    ),
    "other.py": "import later\n",
    "broken.py": "import ran\nran.RUNS.append('broken')\nraise RuntimeError('broken at run')\n",
    # later_a (deferred) imports later_b (not), whose code reads later_a while later_a
    # runs.
    "later_a.py": "import later_b\nA = 'a'\n",
    "later_b.py": "import later_a\nSEEN = getattr(later_a, 'A', 'part-made')\n",
    "slow.py": "import ran, time\nran.RUNS.append('slow')\ntime.sleep(0.2)\nDONE = True\n",
}


def _deferred(folder: Path, script: str) -> dict[str, object]:
    _write_bundle(folder, DEFERRED_SOURCES, {"later", "broken", "later_a", "slow"})
    ran = _run(folder, textwrap.dedent(script) + "\nprint(json.dumps(out))\n")
    assert ran.returncode == 0, ran.stderr
    result: dict[str, object] = json.loads(ran.stdout.splitlines()[-1])
    return result


def test_a_deferred_module_runs_at_its_first_use_and_once(tmp_path: Path) -> None:
    out = _deferred(
        tmp_path,
        """
        import json, sys, importlib, ran
        import later
        out = {"after_import": list(ran.RUNS)}
        import later  # the import system reads __spec__ of a module it has
        import other  # another importer of it
        out["spec_name"] = [later.__spec__.name, later.__name__]
        out["after_imports"] = list(ran.RUNS)
        out["value"] = later.VALUE
        out["after_use"] = list(ran.RUNS)
        from later import twice
        out["twice"] = twice(4)
        out["type"] = type(later) is type(sys)
        out["same"] = sys.modules["later"] is later
        importlib.reload(later)
        out["after_reload"] = list(ran.RUNS)
        """,
    )
    assert out["after_import"] == []
    assert out["spec_name"] == ["later", "later"]
    assert out["after_imports"] == []
    assert out["value"] == 42
    assert out["after_use"] == ["later"]
    assert out["twice"] == 8
    assert out["type"] is True and out["same"] is True
    assert out["after_reload"] == ["later", "later"]


def test_what_is_set_on_a_deferred_module_before_its_use_stays(tmp_path: Path) -> None:
    out = _deferred(
        tmp_path,
        """
        import json, later
        later.VALUE = "patched"  # as /init patches dataclasses before its first use
        later.extra = 1
        out = {"value": later.VALUE, "extra": later.extra, "twice": later.twice(1)}
        """,
    )
    assert out == {"value": "patched", "extra": 1, "twice": 2}


def test_a_deferred_module_whose_code_fails_fails_its_user_and_leaves(tmp_path: Path) -> None:
    out = _deferred(
        tmp_path,
        """
        import json, sys, ran
        import broken
        out = {"imported": "broken" in sys.modules}
        try:
            broken.anything
        except RuntimeError as exc:
            out["error"] = str(exc)
        out["left"] = "broken" not in sys.modules
        try:
            import broken
            broken.anything
        except RuntimeError as exc:
            out["again"] = str(exc)
        out["runs"] = ran.RUNS
        """,
    )
    assert out == {
        "imported": True,
        "error": "broken at run",
        "left": True,
        "again": "broken at run",
        "runs": ["broken", "broken"],
    }


def test_a_circular_import_sees_a_deferred_module_part_made_as_an_eager_one(
    tmp_path: Path,
) -> None:
    out = _deferred(
        tmp_path,
        """
        import json
        import later_a
        out = {"a": later_a.A}
        import later_b
        out["b_saw"] = later_b.SEEN
        """,
    )
    assert out == {"a": "a", "b_saw": "part-made"}


def test_threads_using_a_deferred_module_at_once_run_it_once(tmp_path: Path) -> None:
    out = _deferred(
        tmp_path,
        """
        import json, threading, ran
        import slow
        seen = []
        threads = [threading.Thread(target=lambda: seen.append(slow.DONE)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out = {"seen": seen, "runs": ran.RUNS}
        """,
    )
    assert out == {"seen": [True] * 4, "runs": ["slow"]}


def test_the_trace_names_the_standard_library_modules_imported_and_not_used(
    tmp_path: Path,
) -> None:
    from mirage.vm._image import trace

    # dataclasses imports inspect for the docstring of a class without one; textwrap
    # the application imports itself (so uses later, when it runs).
    (tmp_path / "app.py").write_text(
        "import dataclasses, textwrap\n"
        '@dataclasses.dataclass\nclass P:\n    """A point."""\n    x: int = 0\n'
    )
    (tmp_path / "main.py").write_text("import app\n")
    (tmp_path / "optional.py").write_text("import inspect\ninspect.isfunction(len)\n")
    scripts = [tmp_path / "main.py", tmp_path / "optional.py"]
    traced, unused = trace(scripts, [tmp_path], watched=1)
    assert {"app", "dataclasses", "inspect", "textwrap"} <= traced
    # What only the unwatched script used (and imported) counts as unused.
    assert "inspect" in unused
    assert not {"app", "dataclasses", "textwrap"} & unused
    _, unused_all = trace(scripts, [tmp_path])
    assert "inspect" not in unused_all


def test_a_child_forked_while_a_thread_runs_a_deferred_module_does_not_hang(
    tmp_path: Path,
) -> None:
    out = _deferred(
        tmp_path,
        """
        import json, os, signal, threading, time, ran
        import slow
        runner = threading.Thread(target=lambda: slow.DONE)
        runner.start()
        while not ran.RUNS:  # the thread is inside slow's code, holding its lock
            time.sleep(0.01)
        pid = os.fork()
        if pid == 0:
            signal.alarm(10)  # a hang fails the test instead of stopping it
            try:
                seen = slow.DONE
            except AttributeError:
                seen = "part-made"
            os._exit(0 if seen == "part-made" else 3)
        _, status = os.waitpid(pid, 0)
        runner.join()
        out = {"child": os.waitstatus_to_exitcode(status), "parent": slow.DONE}
        """,
    )
    assert out == {"child": 0, "parent": True}
