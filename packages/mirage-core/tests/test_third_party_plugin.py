"""A third-party plugin, installed the way a user installs one, seen by the mirage tool.

``data/third_party/mirage-greeter`` is a distribution of its own (the one the
plugin-author tutorial writes): it registers a new module type, ``greeter``, and one
implementation of it. ``mirage-broken`` is a plugin whose module raises ImportError.
Each is built by pip with poetry-core into a directory of its own that the tool
finds through ``PYTHONPATH``; the tool runs in a subprocess, as ``python -m
mirage.core``, so nothing of this process leaks into it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

DATA = Path(__file__).parent / "data" / "third_party"
REPO = Path(__file__).resolve().parents[3]
UNIX_SOURCE = Path(__file__).resolve().parents[2] / "mirage-unix"
TUTORIAL = REPO / "docs" / "tutorial-plugin.md"


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _pip_install(source: Path, site: Path) -> None:
    """Install ``source`` alone into ``site``, as pip builds it (no index, no deps)."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--target",
            str(site),
            str(source),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Install directories: ``greeter``, ``broken`` and, if needed, ``unix``."""
    if not _importable("poetry.core"):
        pytest.skip("building the test plugins needs poetry-core (pip install poetry-core)")
    root = tmp_path_factory.mktemp("third_party")
    sources = {"greeter": DATA / "mirage-greeter", "broken": DATA / "mirage-broken"}
    if not _importable("mirage.unix"):
        if not (UNIX_SOURCE / "pyproject.toml").exists():
            pytest.skip("configure and build need the unix target: install mirage-unix")
        sources["unix"] = UNIX_SOURCE
    installed: dict[str, Path] = {}
    for name, source in sources.items():
        copy = root / "src" / source.name
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__", "dist"))
        _pip_install(copy, root / name)
        installed[name] = root / name
    return installed


def _env(paths: list[Path]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIRAGE_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [*map(str, paths), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    return env


def _search_path(sites: dict[str, Path], *names: str) -> list[Path]:
    return [sites[n] for n in (*names, "unix") if n in sites]


def mirage(
    sites: dict[str, Path], names: tuple[str, ...], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mirage.core", *args],
        env=_env(_search_path(sites, *names)),
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def copy_project(tmp_path: Path, name: str) -> Path:
    copy = tmp_path / name
    shutil.copytree(DATA / name, copy, ignore=shutil.ignore_patterns("__pycache__", "mirage"))
    return copy


def test_plugins_lists_the_plugin_its_module_type_and_impl(sites: dict[str, Path]) -> None:
    result = mirage(sites, ("greeter",), "plugins")
    assert result.returncode == 0, result.stderr
    assert (
        "greeter: mirage-greeter 1.0.0\n"
        "    module types: greeter\n"
        "    impls: friendly_greeter\n" in result.stdout
    )
    assert "failed to load" not in result.stdout


def test_configure_build_and_run(sites: dict[str, Path], tmp_path: Path) -> None:
    proj = copy_project(tmp_path, "project")
    configured = mirage(sites, ("greeter",), "-C", str(proj), "configure", "-t", "unix")
    assert configured.returncode == 0, configured.stderr
    assert "configured greet for target unix (3 devices" in configured.stdout

    devices = mirage(sites, ("greeter",), "-C", str(proj), "query", "devices")
    assert devices.stdout.splitlines() == [
        "unix_console\tconsole unix_console\tmirage.unix.console:UnixConsole",
        "friendly_greeter\tgreeter friendly_greeter\tmirage_greeter.friendly:FriendlyGreeter",
        "job\tjob\tunikernel:start",
    ]
    packages = mirage(sites, ("greeter",), "-C", str(proj), "query", "packages")
    assert "mirage-greeter>=1.0,<2" in packages.stdout.splitlines()

    built = mirage(sites, ("greeter",), "-C", str(proj), "build")
    assert built.returncode == 0, built.stderr
    artifact = proj / "dist" / "greet.pyz"
    assert artifact.exists()
    names = zipfile.ZipFile(artifact).namelist()
    # The build collected the plugin's device modules (found through PYTHONPATH)...
    assert "mirage_greeter/friendly.py" in names
    assert "mirage_greeter/types.py" in names
    # ...and not its declarations, which the artifact never imports.
    assert "mirage_greeter/plugin.py" not in names

    # The zipapp is self-contained: no site-packages (-S), no PYTHONPATH (-I).
    ran = subprocess.run(
        [sys.executable, "-I", "-S", str(artifact), "--name", "Ada", "--punctuation", "!!"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "Bonjour, Ada!!\n"

    helped = subprocess.run(
        [sys.executable, "-I", "-S", str(artifact), "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert "--punctuation" in helped.stdout
    assert "--name" in helped.stdout

    run = mirage(sites, ("greeter",), "-C", str(proj), "run")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "Bonjour, World!\n"


def test_broken_plugin_is_reported_and_the_others_load(sites: dict[str, Path]) -> None:
    result = mirage(sites, ("greeter", "broken"), "plugins")
    assert result.returncode == 0, result.stderr
    assert "greeter: mirage-greeter 1.0.0\n" in result.stdout
    assert re.search(r"^unix: mirage-unix ", result.stdout, re.MULTILINE)
    assert (
        "plugin 'broken' (from mirage-broken 0.1.0) failed to load: ImportError:"
        " mirage-broken needs the library 'libgreet', which is not installed"
    ) in result.stdout


def test_project_that_needs_the_broken_plugin_fails_naming_it(
    sites: dict[str, Path], tmp_path: Path
) -> None:
    proj = copy_project(tmp_path, "project-broken")
    result = mirage(sites, ("greeter", "broken"), "-C", str(proj), "configure", "-t", "unix")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    message = result.stderr
    assert message.startswith(f"mirage: error: {proj.resolve() / 'config.py'}:5: ")
    assert "no installed plugin provides the implementation 'broken_greeter'" in message
    assert "install mirage-broken" in message
    assert "plugin 'broken' (from mirage-broken 0.1.0)" in message
    assert "" not in message.rstrip("\n").split("\n")  # one paragraph: no blank line
    assert not (proj / "mirage" / "plan.json").exists()


def test_other_projects_still_configure_beside_the_broken_plugin(
    sites: dict[str, Path], tmp_path: Path
) -> None:
    proj = copy_project(tmp_path, "project")
    result = mirage(sites, ("greeter", "broken"), "-C", str(proj), "configure", "-t", "unix")
    assert result.returncode == 0, result.stderr


def test_the_plugins_own_tests_pass(sites: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "mirage-greeter"
    shutil.copytree(DATA / "mirage-greeter", copy)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=copy,
        env=_env(_search_path(sites, "greeter")),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout


_BLOCK = re.compile(r"<!-- file: (\S+) -->\n```[a-z]*\n(.*?)```\n", re.DOTALL)


def test_the_tutorial_shows_these_files() -> None:
    """docs/tutorial-plugin.md quotes the test data, so the tests prove the tutorial."""
    if not TUTORIAL.exists():
        pytest.skip("docs/tutorial-plugin.md is not here (not a checkout of the repository)")
    quoted = dict(_BLOCK.findall(TUTORIAL.read_text()))
    assert "mirage-greeter/src/mirage_greeter/plugin.py" in quoted
    for name, text in quoted.items():
        assert (DATA / name).read_text() == text, f"the tutorial's {name} differs from the file"
