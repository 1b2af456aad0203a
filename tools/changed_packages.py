"""The packages changed since a git base, and the packages that depend on them.

A package changed if a file under its directory differs between BASE and the work
tree (committed, staged, unstaged or untracked). A change to a workspace file that
every package's checks read (the root ``pyproject.toml`` or ``noxfile.py``) selects
every package. Packages are printed one per line, in dependency order.

The default BASE is the merge base of HEAD with the remote's default branch
(``origin/HEAD``, else ``origin/main``); without a remote, ``HEAD~1``; in a
repository with a single commit, the empty tree (everything is new).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

from packages import ROOT, Package, PackageError, dependents, load_packages

__all__ = ["WORKSPACE_FILES", "changed_files", "changed_packages", "default_base", "main"]

WORKSPACE_FILES = frozenset({"pyproject.toml", "noxfile.py"})
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


class GitError(Exception):
    pass


def _git(root: Path, *args: str) -> str | None:
    result = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
    )
    return result.stdout if result.returncode == 0 else None


def default_base(root: Path) -> str:
    """See the module's docstring."""
    for remote in ("origin/HEAD", "origin/main"):
        if _git(root, "rev-parse", "--verify", "--quiet", remote) is not None:
            base = _git(root, "merge-base", "HEAD", remote)
            if base:
                return base.strip()
    if _git(root, "rev-parse", "--verify", "--quiet", "HEAD~1") is not None:
        return "HEAD~1"
    return EMPTY_TREE


def changed_files(root: Path, base: str) -> list[str]:
    """Paths (relative to the repository's top) that differ from ``base``."""
    diff = _git(root, "diff", "--name-only", "--no-renames", base)
    if diff is None:
        raise GitError(f"git cannot compare with {base!r}; is it a commit of this repository?")
    untracked = _git(root, "ls-files", "--others", "--exclude-standard", "--full-name") or ""
    return sorted({line for line in (diff + untracked).splitlines() if line})


def changed_packages(
    root: Path, packages: Sequence[Package], files: Iterable[str]
) -> tuple[list[Package], dict[str, str]]:
    """The changed packages and their dependents, with why each was selected."""
    top = Path((_git(root, "rev-parse", "--show-toplevel") or str(root)).strip()).resolve()
    by_dir = {p.path.resolve().relative_to(top).as_posix(): p for p in packages}
    workspace = {(root.resolve() / n).relative_to(top).as_posix() for n in WORKSPACE_FILES}
    why: dict[str, str] = {}
    for name in files:
        if name in workspace:
            for every in packages:
                why.setdefault(every.name, f"workspace file {name} changed")
            continue
        parts = PurePosixPath(name).parts
        for depth in range(len(parts) - 1, 0, -1):
            owner = by_dir.get("/".join(parts[:depth]))
            if owner is not None:
                why.setdefault(owner.name, f"{name} changed")
                break
    selected = dependents(packages, why)
    for package in selected:
        if package.name not in why:
            depends_on = [d for d in package.deps if d in why]
            why[package.name] = f"depends on {', '.join(depends_on)}"
    return selected, why


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Print the packages changed since BASE and the packages that depend on"
        " them, one per line, in dependency order."
    )
    parser.add_argument(
        "base",
        nargs="?",
        metavar="BASE",
        help="a commit (default: merge base with origin's default branch, else HEAD~1)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="say why for each")
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="repository root (default: this repository)"
    )
    args = parser.parse_args(argv)
    root: Path = args.root
    try:
        packages = load_packages(root)
        base = args.base or default_base(root)
        selected, why = changed_packages(root, packages, changed_files(root, base))
    except (GitError, PackageError) as exc:
        print(f"changed_packages: error: {exc}", file=sys.stderr)
        return 1
    for package in selected:
        print(f"{package.name}\t{why[package.name]}" if args.verbose else package.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
