"""The ``irmin`` command line, on a repository that ``git`` checks."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from conftest import git, needs_git

from mirage.irmin._cli import main


def run(*argv: str, stdin: bytes = b"") -> tuple[int, str]:
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, write_through=True)
    old_out, old_in = sys.stdout, sys.stdin
    sys.stdout = out
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    try:
        code = main(list(argv))
    finally:
        sys.stdout, sys.stdin = old_out, old_in
    return code, raw.getvalue().decode()


@needs_git
def test_cli_round_trip(tmp_path: Path) -> None:
    repo = str(tmp_path / "r.git")
    assert run("-C", repo, "init")[0] == 0
    assert run("-C", repo, "-m", "first", "set", "a/b", "hello")[0] == 0
    assert run("-C", repo, "set", "a/c", "x")[0] == 0
    assert run("-C", repo, "list", "a") == (0, "b\nc\n")
    assert run("-C", repo, "get", "a/b") == (0, "hello")
    assert run("-C", repo, "set", "from/stdin", stdin=b"piped\n")[0] == 0
    assert run("-C", repo, "get", "from/stdin") == (0, "piped\n")
    assert run("-C", repo, "remove", "from")[0] == 0
    assert run("-C", repo, "branch", "dev") == (0, "dev\nmain\n")
    assert run("-C", repo, "-b", "dev", "set", "n", "1")[0] == 0
    assert run("-C", repo, "merge", "dev")[0] == 0
    assert run("-C", repo, "list") == (0, "a/\nn\n")
    code, log = run("-C", repo, "log")
    assert code == 0 and log.splitlines()[-1].endswith(" first")
    assert run("-C", repo, "remove", "a")[0] == 0
    assert run("-C", repo, "get", "missing")[0] == 1
    git("fsck", "--strict", cwd=repo)
    assert git("show", "main:n", cwd=repo) == b"1"
    assert run("clone", repo, str(tmp_path / "copy.git"))[0] == 0
    assert run("-C", str(tmp_path / "copy.git"), "set", "pushed", "yes")[0] == 0
    assert run("-C", str(tmp_path / "copy.git"), "push", repo)[0] == 0
    assert git("show", "main:pushed", cwd=repo) == b"yes"
    assert run("-C", repo, "set", "later", "1")[0] == 0
    assert run("-C", str(tmp_path / "copy.git"), "pull", repo)[0] == 0
    assert run("-C", str(tmp_path / "copy.git"), "list") == (0, "later\nn\npushed\n")
