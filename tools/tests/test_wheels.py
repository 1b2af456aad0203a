import importlib.util
import zipfile
from pathlib import Path

import pytest
from build_all import build_package
from check_wheels import check_package, read_wheel

from packages import ROOT, find_package, load_packages

METADATA = """\
Metadata-Version: 2.3
Name: mirage-demo
Version: 1.0.0
Requires-Dist: mirage-core (>=0.1,<1)
Requires-Dist: pluggy>=1.5
Requires-Dist: pytest (>=8) ; extra == "testing"
"""

ENTRY_POINTS = """\
[console_scripts]
demo=mirage.demo:main

[mirage]
demo=mirage.demo._plugin
Other=mirage.demo._other
"""


def test_read_wheel(tmp_path: Path) -> None:
    path = tmp_path / "mirage_demo-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mirage/demo/__init__.py", "")
        zf.writestr("mirage_demo-1.0.0.dist-info/METADATA", METADATA)
        zf.writestr("mirage_demo-1.0.0.dist-info/entry_points.txt", ENTRY_POINTS)
    wheel = read_wheel(path)
    assert (wheel.name, wheel.version) == ("mirage-demo", "1.0.0")
    assert wheel.requires == ("mirage-core (>=0.1,<1)", "pluggy>=1.5")
    assert wheel.entry_points == ("Other", "demo")


def test_missing_wheel_fails_without_installing(tmp_path: Path) -> None:
    packages = load_packages(ROOT)
    check = check_package(find_package(packages, "mirage-unix"), packages, tmp_path)
    assert not check.ok
    assert "no wheel of mirage-core" in check.detail


@pytest.mark.skipif(
    importlib.util.find_spec("build") is None or importlib.util.find_spec("poetry") is None,
    reason="building wheels needs the 'build' and 'poetry-core' distributions",
)
def test_build_one_package(tmp_path: Path) -> None:
    package = find_package(load_packages(ROOT), "mirage-unix")
    built = build_package(package, tmp_path)
    assert built.error == ""
    assert built.wheel is not None
    assert built.sdist is not None
    wheel = read_wheel(built.wheel)
    assert wheel.name == "mirage-unix"
    assert wheel.entry_points == package.entry_points
