"""The crunch build step and the store it feeds."""

from __future__ import annotations

import importlib.util
import itertools
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mirage.core import BuildContext, MirageError
from mirage.core.build import collect_modules
from mirage.core.testing import KvRoTests, run
from mirage.core.types import KvKind
from mirage.kv import CrunchKv
from mirage.kv._crunch import build

COUNTER = itertools.count()


def write_tree(root: Path, contents: Mapping[str, bytes]) -> Path:
    for key, data in contents.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)
    root.mkdir(parents=True, exist_ok=True)
    return root


def import_path(path: Path) -> ModuleType:
    """The generated module at ``path``, imported without touching ``sys.path``."""
    spec = importlib.util.spec_from_file_location(f"_generated_{next(COUNTER)}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def crunch(project: Path, contents: Mapping[str, bytes]) -> Any:
    """The ``FILES`` table the build step makes of ``contents``."""
    n = next(COUNTER)
    write_tree(project / f"src{n}", contents)
    ctx = BuildContext(project, project / "gen", f"kv-{n}", "unix", {"root": f"src{n}"})
    module, _, attribute = build(ctx)["files"].partition(":")
    return getattr(import_path(ctx.gen_dir / f"{module}.py"), attribute)


class TestCrunchKv(KvRoTests):
    @pytest.fixture(autouse=True)
    def _tmp(self, tmp_path: Path) -> None:
        self.tmp = tmp_path

    async def make_kv_ro(self, contents: Mapping[str, bytes]) -> CrunchKv:
        return await CrunchKv.connect(files=crunch(self.tmp, contents), root="unused")


def context(project: Path, root: str = "htdocs", device_id: str = "htdocs-0") -> BuildContext:
    return BuildContext(project, project / "gen", device_id, "unix", {"root": root})


def test_build_writes_a_module_and_names_it(tmp_path: Path) -> None:
    write_tree(tmp_path / "htdocs", {"index.html": b"<h1>hi</h1>", "css/site.css": b"b{}"})
    os.utime(tmp_path / "htdocs" / "index.html", (0, 1_600_000_000.25))
    extra = build(context(tmp_path))
    assert extra == {"files": "crunch_htdocs_0:FILES"}
    files = import_path(tmp_path / "gen" / "crunch_htdocs_0.py").FILES
    assert files["index.html"] == (b"<h1>hi</h1>", 1_600_000_000.25)
    assert sorted(files) == ["css/site.css", "index.html"]
    kv = run(CrunchKv.connect(files=files, root="htdocs"))
    assert run(kv.get("css/site.css")) == b"b{}"
    assert run(kv.list("")) == [("css", KvKind.DICTIONARY), ("index.html", KvKind.VALUE)]
    assert run(kv.last_modified("index.html")) == 1_600_000_000.25


def test_build_is_deterministic(tmp_path: Path) -> None:
    write_tree(
        tmp_path / "htdocs", {f"d{i}/f{j}": bytes([i, j]) * 100 for i in range(3) for j in range(3)}
    )
    build(context(tmp_path))
    first = (tmp_path / "gen" / "crunch_htdocs_0.py").read_bytes()
    build(context(tmp_path))
    assert (tmp_path / "gen" / "crunch_htdocs_0.py").read_bytes() == first


def test_binary_and_odd_names(tmp_path: Path) -> None:
    contents = {
        "bin": bytes(range(256)),
        "quote'\"\\name": b"x",
        "new\nline": b"y",
        "\u00e9t\u00e9/\u2603": b"z",
    }
    kv = run(CrunchKv.connect(files=crunch(tmp_path, contents)))
    for key, data in contents.items():
        assert run(kv.get(key)) == data


def test_links_leaving_the_root_are_not_embedded(tmp_path: Path) -> None:
    write_tree(tmp_path / "htdocs", {"in": b"in"})
    (tmp_path / "secret").write_bytes(b"secret")
    (tmp_path / "htdocs" / "out").symlink_to(tmp_path / "secret")
    (tmp_path / "htdocs" / "alias").symlink_to("in")
    (tmp_path / "htdocs" / "loop").symlink_to(".")
    build(context(tmp_path))
    files = import_path(tmp_path / "gen" / "crunch_htdocs_0.py").FILES
    assert sorted(files) == ["alias", "in"]


def test_missing_root_is_a_mirage_error(tmp_path: Path) -> None:
    with pytest.raises(MirageError, match="crunch"):
        build(context(tmp_path, root="nowhere"))
    with pytest.raises(MirageError):
        build(context(tmp_path, root=""))


def test_runtime_does_not_carry_the_builder(tmp_path: Path) -> None:
    code = (
        "import sys, mirage.kv.crunch;"
        " print(sorted(m for m in sys.modules if m.startswith('mirage')))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded = set(eval(out.stdout))
    assert "mirage.kv._crunch" not in loaded
    assert "mirage.core.build" not in loaded
    main = tmp_path / "main.py"
    main.write_text(
        textwrap.dedent("""
        from mirage.kv.crunch import CrunchKv
    """)
    )
    sealed = {m.name for m in collect_modules(main)}
    assert "mirage.kv.crunch" in sealed
    assert (
        not {"mirage.kv._crunch", "mirage.kv.directory", "mirage.kv.tar", "mirage.core.build"}
        & sealed
    )
