from pathlib import Path

import pytest

from packages import (
    ROOT,
    PackageError,
    dependents,
    find_package,
    load_packages,
    normalize,
    requirement_name,
)


def make_package(root: Path, directory: str, name: str, deps: list[str]) -> None:
    path = root / "packages" / directory
    path.mkdir(parents=True)
    dependencies = ", ".join(f'"{d}"' for d in deps)
    (path / "pyproject.toml").write_text(
        "[project]\n"
        f'name = "{name}"\n'
        'version = "1.2.3"\n'
        f"dependencies = [{dependencies}]\n"
        "\n[project.entry-points.mirage]\n"
        f'{directory} = "x.{directory}"\n'
    )


@pytest.mark.parametrize(
    ("requirement", "name"),
    [
        ("pluggy>=1.5,<2", "pluggy"),
        ("mirage-core[testing]>=0.1,<1", "mirage-core"),
        ("Mirage_Core ; python_version >= '3.11'", "mirage-core"),
        ("cryptography", "cryptography"),
    ],
)
def test_requirement_name(requirement: str, name: str) -> None:
    assert requirement_name(requirement) == name


def test_normalize() -> None:
    assert normalize("Mirage.Core__x") == "mirage-core-x"


def test_this_repository_core_comes_first() -> None:
    packages = load_packages(ROOT)
    names = [p.name for p in packages]
    assert names[0] == "mirage-core"
    unix = find_package(packages, "mirage-unix")
    assert unix.deps == ("mirage-core",)
    assert "unix" in unix.entry_points
    for index, package in enumerate(packages):
        assert set(package.deps) <= set(names[:index])


def test_dependency_order_and_dependents(tmp_path: Path) -> None:
    make_package(tmp_path, "app", "mirage-app", ["mirage-net>=1", "pluggy"])
    make_package(tmp_path, "net", "mirage-net", ["mirage-base[extra]>=1 ; python_version>'3'"])
    make_package(tmp_path, "base", "mirage-base", [])
    make_package(tmp_path, "alone", "mirage-alone", ["mirage-not-here>=1"])
    packages = load_packages(tmp_path)
    assert [p.name for p in packages] == ["mirage-alone", "mirage-base", "mirage-net", "mirage-app"]
    assert find_package(packages, "app").deps == ("mirage-net",)
    assert find_package(packages, "alone").deps == ()
    assert [p.name for p in dependents(packages, ["mirage-base"])] == [
        "mirage-base",
        "mirage-net",
        "mirage-app",
    ]
    assert [p.name for p in dependents(packages, ["mirage-alone"])] == ["mirage-alone"]


def test_cycle_is_named(tmp_path: Path) -> None:
    make_package(tmp_path, "a", "mirage-a", ["mirage-b"])
    make_package(tmp_path, "b", "mirage-b", ["mirage-a"])
    with pytest.raises(PackageError, match="cycle: mirage-a -> mirage-b -> mirage-a"):
        load_packages(tmp_path)


def test_unknown_package_lists_known(tmp_path: Path) -> None:
    make_package(tmp_path, "a", "mirage-a", [])
    with pytest.raises(PackageError, match=r"no package 'zzz'.*mirage-a"):
        find_package(load_packages(tmp_path), "zzz")
