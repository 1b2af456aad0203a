"""Bump the version of one package and move its CHANGELOG's unreleased section.

``[project].version`` of the package's ``pyproject.toml`` is edited in place (only
the version string changes; comments and layout stay). In ``CHANGELOG.md`` the first
``## X (unreleased)`` heading becomes ``## NEW (unreleased)``; with no unreleased
section, a new one is added above the others, holding ``--message``. A message given
while an unreleased section exists becomes its first entry.

Versions are ``X.Y.Z``; the new one must be greater than the current one.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packages import ROOT, PackageError, find_package, load_packages, read_package

__all__ = ["BumpError", "Bump", "bump_version", "main", "plan_bump"]

_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_TABLE = re.compile(r"^\s*\[")
_VERSION_LINE = re.compile(r"""^(\s*version\s*=\s*)(["'])([^"']*)\2""")
_UNRELEASED = re.compile(r"^## (\S+) \(unreleased\)\s*$")
_PARTS = ("major", "minor", "patch")


class BumpError(Exception):
    """The bump cannot be done; the message says why."""


def _parse(version: str) -> tuple[int, int, int]:
    match = _VERSION.match(version)
    if match is None:
        raise BumpError(f"version {version!r} is not of the form X.Y.Z")
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


def bump_version(current: str, how: str) -> str:
    """The version after ``current``: ``how`` is major, minor, patch or an X.Y.Z."""
    old = _parse(current)
    if how == "major":
        new = (old[0] + 1, 0, 0)
    elif how == "minor":
        new = (old[0], old[1] + 1, 0)
    elif how == "patch":
        new = (old[0], old[1], old[2] + 1)
    else:
        new = _parse(how)
    text = ".".join(map(str, new))
    if new <= old:
        raise BumpError(
            f"the new version {text} is not greater than the current version {current};"
            " versions only go up"
        )
    return text


def _edit_pyproject(text: str, new: str, source: str) -> str:
    lines = text.splitlines(keepends=True)
    in_project = False
    for i, line in enumerate(lines):
        if _TABLE.match(line):
            in_project = line.strip() == "[project]"
            continue
        if in_project:
            match = _VERSION_LINE.match(line)
            if match:
                prefix, quote = match.group(1), match.group(2)
                lines[i] = f"{prefix}{quote}{new}{quote}" + line[match.end() :]
                return "".join(lines)
    raise BumpError(f'{source}: no version = "..." line in the [project] table')


def _entry(message: str) -> list[str]:
    wrapped = textwrap.wrap(message, width=86, initial_indent="- ", subsequent_indent="  ")
    return [line + "\n" for line in wrapped]


def _edit_changelog(text: str, new: str, message: str | None, source: str) -> str:
    lines = text.splitlines(keepends=True)
    heading = f"## {new} (unreleased)\n"
    for i, line in enumerate(lines):
        if _UNRELEASED.match(line):
            lines[i] = heading
            if message:
                start = i + 1
                while start < len(lines) and not lines[start].strip():
                    start += 1
                lines[start:start] = _entry(message)
            return "".join(lines)
    if not message:
        raise BumpError(
            f"{source} has no '## X (unreleased)' section to move; give --message TEXT to start one"
        )
    section = [heading, "\n", *_entry(message), "\n"]
    for i, line in enumerate(lines):
        if line.startswith("## "):
            lines[i:i] = section
            return "".join(lines)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    if lines and lines[-1].strip():
        lines.append("\n")
    return "".join(lines + section)


@dataclass(frozen=True)
class Bump:
    """The edits of one bump: the new text of each file."""

    name: str
    old: str
    new: str
    files: dict[Path, tuple[str, str]]  # path -> (old text, new text)

    def diff(self) -> str:
        out: list[str] = []
        for path, (before, after) in self.files.items():
            out.extend(
                difflib.unified_diff(
                    before.splitlines(keepends=True),
                    after.splitlines(keepends=True),
                    fromfile=f"{os.path.relpath(path)} (before)",
                    tofile=f"{os.path.relpath(path)} (after)",
                )
            )
        return "".join(out)

    def write(self) -> None:
        for path, (_, after) in self.files.items():
            path.write_text(after, encoding="utf-8")


def plan_bump(package_dir: Path, how: str, message: str | None = None) -> Bump:
    """Compute the edits for bumping the package in ``package_dir``."""
    try:
        package = read_package(package_dir)
    except PackageError as exc:
        raise BumpError(str(exc)) from None
    new = bump_version(package.version, how)
    pyproject_text = package.pyproject.read_text(encoding="utf-8")
    files = {
        package.pyproject: (
            pyproject_text,
            _edit_pyproject(pyproject_text, new, str(package.pyproject)),
        )
    }
    if not package.changelog.exists():
        raise BumpError(f"{package.changelog} does not exist")
    changelog_text = package.changelog.read_text(encoding="utf-8")
    files[package.changelog] = (
        changelog_text,
        _edit_changelog(changelog_text, new, message, str(package.changelog)),
    )
    return Bump(package.name, package.version, new, files)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Bump one package's version (pyproject.toml) and move its CHANGELOG's"
        " unreleased section to the new version."
    )
    parser.add_argument(
        "package", help="distribution name (mirage-core) or a path to a package directory"
    )
    parser.add_argument("version", metavar="major|minor|patch|X.Y.Z", help="the new version")
    parser.add_argument("-m", "--message", help="a CHANGELOG entry for this version")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the changes and write nothing"
    )
    args = parser.parse_args(argv)
    try:
        candidate = Path(args.package)
        if (candidate / "pyproject.toml").is_file():
            package_dir = candidate
        else:
            package_dir = find_package(load_packages(ROOT), args.package).path
        bump = plan_bump(package_dir, args.version, args.message)
    except (BumpError, PackageError) as exc:
        print(f"bump: error: {exc}", file=sys.stderr)
        return 1
    if args.dry_run:
        sys.stdout.write(bump.diff())
        print(f"{bump.name}: {bump.old} -> {bump.new} (dry run: nothing written)")
        return 0
    bump.write()
    print(f"{bump.name}: {bump.old} -> {bump.new}")
    for path in bump.files:
        print(f"  edited {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
