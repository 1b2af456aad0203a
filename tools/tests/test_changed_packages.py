import subprocess
from pathlib import Path

import pytest
from changed_packages import changed_files, changed_packages, default_base, main
from test_packages import make_package

from packages import load_packages


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(root), *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    make_package(tmp_path, "base", "mirage-base", [])
    make_package(tmp_path, "net", "mirage-net", ["mirage-base>=1"])
    make_package(tmp_path, "alone", "mirage-alone", [])
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\n")
    (tmp_path / "README.md").write_text("hello\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "first")
    return tmp_path


def selected(repo: Path, base: str) -> list[str]:
    packages, _ = changed_packages(repo, load_packages(repo), changed_files(repo, base))
    return [p.name for p in packages]


def test_single_commit_base_is_the_empty_tree(repo: Path) -> None:
    assert selected(repo, default_base(repo)) == ["mirage-alone", "mirage-base", "mirage-net"]


def test_a_change_selects_the_package_and_its_dependents(repo: Path) -> None:
    (repo / "README.md").write_text("changed\n")
    git(repo, "commit", "-q", "-am", "readme")
    assert default_base(repo) == "HEAD~1"
    assert selected(repo, "HEAD~1") == []
    (repo / "packages" / "base" / "new.py").write_text("")  # untracked
    assert selected(repo, "HEAD") == ["mirage-base", "mirage-net"]
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    assert selected(repo, "HEAD~1") == ["mirage-base", "mirage-net"]
    assert selected(repo, "HEAD") == []
    (repo / "packages" / "net" / "pyproject.toml").write_text(
        (repo / "packages" / "net" / "pyproject.toml").read_text() + "\n"
    )
    assert selected(repo, "HEAD") == ["mirage-net"]


def test_workspace_file_selects_all(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "pyproject.toml").write_text("[tool.ruff]\nline-length = 100\n")
    assert main(["--root", str(repo), "-v", "HEAD"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "mirage-alone\tworkspace file pyproject.toml changed",
        "mirage-base\tworkspace file pyproject.toml changed",
        "mirage-net\tworkspace file pyproject.toml changed",
    ]


def test_bad_base(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", str(repo), "no-such-commit"]) == 1
    assert "no-such-commit" in capsys.readouterr().err
