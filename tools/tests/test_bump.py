import shutil
from pathlib import Path

import pytest
from bump import BumpError, bump_version, main, plan_bump

from packages import ROOT

PYPROJECT = """\
[build-system]
requires = ["poetry-core>=2.0,<3"]

[project]
name = "mirage-demo"
# the version is bumped by tools/bump.py
version = "0.1.0"  # keep this comment
dependencies = ["mirage-core>=0.1,<1"]

[tool.other]
version = "9.9.9"
"""

CHANGELOG = """\
# Changelog of mirage-demo

## 0.1.0 (unreleased)

- First release.
"""


@pytest.fixture
def package(tmp_path: Path) -> Path:
    path = tmp_path / "mirage-demo"
    path.mkdir()
    (path / "pyproject.toml").write_text(PYPROJECT)
    (path / "CHANGELOG.md").write_text(CHANGELOG)
    return path


@pytest.mark.parametrize(
    ("current", "how", "new"),
    [
        ("0.1.0", "patch", "0.1.1"),
        ("0.1.3", "minor", "0.2.0"),
        ("0.9.3", "major", "1.0.0"),
        ("1.2.3", "1.10.0", "1.10.0"),
    ],
)
def test_bump_version(current: str, how: str, new: str) -> None:
    assert bump_version(current, how) == new


@pytest.mark.parametrize("how", ["0.1.0", "0.0.9", "0.1"])
def test_bump_version_refuses(how: str) -> None:
    with pytest.raises(BumpError):
        bump_version("0.1.0", how)


def test_minor_keeps_the_rest_of_the_files(package: Path) -> None:
    assert main([str(package), "minor"]) == 0
    assert (package / "pyproject.toml").read_text() == PYPROJECT.replace(
        'version = "0.1.0"', 'version = "0.2.0"'
    )
    assert (package / "CHANGELOG.md").read_text() == CHANGELOG.replace("0.1.0", "0.2.0")


def test_message_goes_first_in_the_unreleased_section(package: Path) -> None:
    assert main([str(package), "0.1.1", "--message", "Fix the thing."]) == 0
    text = (package / "CHANGELOG.md").read_text()
    assert "## 0.1.1 (unreleased)\n\n- Fix the thing.\n- First release.\n" in text


def test_new_section_when_none_is_unreleased(package: Path) -> None:
    released = CHANGELOG.replace("(unreleased)", "(2026-11-29)")
    (package / "CHANGELOG.md").write_text(released)
    with pytest.raises(BumpError, match="--message"):
        plan_bump(package, "patch")
    bump = plan_bump(package, "patch", "Second release.")
    bump.write()
    assert (package / "CHANGELOG.md").read_text() == (
        "# Changelog of mirage-demo\n\n"
        "## 0.1.1 (unreleased)\n\n- Second release.\n\n"
        "## 0.1.0 (2026-11-29)\n\n- First release.\n"
    )


def test_refuses_a_version_that_does_not_go_up(
    package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(package), "0.1.0"]) == 1
    err = capsys.readouterr().err
    assert "0.1.0 is not greater than the current version 0.1.0" in err
    assert (package / "pyproject.toml").read_text() == PYPROJECT


def test_dry_run_writes_nothing(package: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(package), "major", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert '+version = "1.0.0"  # keep this comment' in out
    assert "+## 1.0.0 (unreleased)" in out
    assert "dry run" in out
    assert (package / "pyproject.toml").read_text() == PYPROJECT
    assert (package / "CHANGELOG.md").read_text() == CHANGELOG


def test_on_a_copy_of_a_real_package(tmp_path: Path) -> None:
    copy = tmp_path / "mirage-unix"
    shutil.copytree(ROOT / "packages" / "mirage-unix", copy, ignore=shutil.ignore_patterns("src"))
    before = (copy / "pyproject.toml").read_text()
    bump = plan_bump(copy, "patch")
    old, new = bump.files[copy / "pyproject.toml"]
    assert old == before
    changed = [(a, b) for a, b in zip(old.splitlines(), new.splitlines(), strict=True) if a != b]
    assert changed == [(f'version = "{bump.old}"', f'version = "{bump.new}"')]
