"""Sessions for the whole monorepo; `nox -l` lists them.

- ``tests-<package>``: one package's tests in its own environment, with only the
  in-repo packages it depends on (installed from source, editable); fails if a
  published copy of any mirage package slipped in.
- ``tools``: tests of tools/.
- ``integration``: every package together; every example configured, built and run.
- ``wheels``: every wheel built, installed alone in a fresh venv, its plugins loaded.
- ``lint`` (ruff), ``typecheck`` (mypy, strict), ``demo`` (the README's main job),
  ``bench-<package>`` (every ``packages/<dist>/bench/*.py``: our code beside its peer
  or baseline in the same run, printing ratios).
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import nox

ROOT = Path(__file__).parent
sys.path.insert(0, str(ROOT / "tools"))

nox.options.default_venv_backend = "venv"
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"
TEST_DEPS = ("pytest>=8", "hypothesis>=6.100")
EXTRA_TEST_DEPS = {
    # The third-party plugin test builds a plugin distribution with poetry-core.
    "mirage-core": ("poetry-core>=2,<3",),
}


def _packages() -> dict[str, dict[str, object]]:
    """dist name -> {dir, short, deps (in-repo dist names), extras}."""
    found: dict[str, dict[str, object]] = {}
    for pyproject in sorted(ROOT.glob("packages/*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text())["project"]
        found[project["name"]] = {
            "dir": pyproject.parent,
            "short": project["name"].removeprefix("mirage-"),
            "deps": [],
            "extras": list(project.get("optional-dependencies", {})),
            "requires": project.get("dependencies", []),
            "testing": project.get("optional-dependencies", {}).get("testing", []),
        }

    def names(requirements: object) -> list[str]:
        return [
            req.split(";")[0].split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip()
            for req in requirements  # type: ignore[attr-defined]
        ]

    for info in found.values():
        info["deps"] = [n for n in names(info["requires"]) if n in found]
        # In-repo packages the tests need (a package's testing extra): from source too.
        info["test_deps"] = [n for n in names(info["testing"]) if n in found]
    return found


PACKAGES = _packages()


def _closure(names: list[str]) -> list[str]:
    """The packages and every in-repo package they (or their tests) depend on,
    dependencies first: pip resolves an editable's extras only against editables
    named before it."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        order.append(name)  # a cycle through test dependencies stops here
        for dep in [*PACKAGES[name]["deps"], *PACKAGES[name]["test_deps"]]:  # type: ignore[misc]
            visit(dep)
        order.remove(name)
        order.append(name)

    for name in names:
        visit(name)
    return order


def install_packages(session: nox.Session, names: list[str], *extra: str) -> None:
    """Install in-repo packages editable (with their testing extra if any), in one
    pip call so that no published copy can satisfy a sibling."""
    args: list[str] = []
    for name in _closure(names):
        info = PACKAGES[name]
        spec = str(Path(str(info["dir"])).relative_to(ROOT))
        if "testing" in info["extras"]:  # type: ignore[operator]
            spec += "[testing]"
        args += ["-e", spec]
    session.install(*args, *extra)
    listing = session.run(
        "python", "-m", "pip", "list", "--exclude-editable", "--format=json", silent=True
    )
    published = [
        p["name"] for p in json.loads(str(listing)) if p["name"].lower().startswith("mirage")
    ]
    if published:
        session.error(f"published copies slipped in instead of the sources: {published}")


for _name, _info in PACKAGES.items():

    def _tests(session: nox.Session, name: str = _name) -> None:
        test_deps = [str(n) for n in PACKAGES[name]["test_deps"]]  # type: ignore[attr-defined]
        install_packages(session, [*test_deps, name], *TEST_DEPS, *EXTRA_TEST_DEPS.get(name, ()))
        tests = Path(str(PACKAGES[name]["dir"])) / "tests"
        session.run("python", "-m", "pytest", "-q", str(tests.relative_to(ROOT)), *session.posargs)

    nox.session(name=f"tests-{_info['short']}", python=PYTHON)(_tests)


nox.options.sessions = [
    *(f"tests-{info['short']}" for info in PACKAGES.values()),
    "tools",
    "integration",
    "boot",
    "lint",
    "typecheck",
    "wheels",
]


@nox.session(python=PYTHON)
def tools(session: nox.Session) -> None:
    """Tests of the release tools."""
    session.install("pytest>=8", "build", "poetry-core>=2,<3")
    session.run("python", "-m", "pytest", "-q", "tools/tests", *session.posargs)


@nox.session(python=PYTHON)
def integration(session: nox.Session) -> None:
    """All packages together: every example configured, built and run."""
    install_packages(session, list(PACKAGES), *TEST_DEPS, "poetry-core>=2,<3")
    session.run("python", "-m", "pytest", "-q", "tests/integration", *session.posargs)


@nox.session(python=PYTHON)
def boot(session: nox.Session) -> None:
    """The examples built for every target and booted under QEMU (tools/boot_matrix.py)."""
    install_packages(session, list(PACKAGES), *TEST_DEPS)
    session.run("python", "tools/boot_matrix.py", *session.posargs)


@nox.session(python=PYTHON)
def wheels(session: nox.Session) -> None:
    """Build every wheel and sdist; install each wheel alone in a fresh venv and check
    that its plugins load."""
    # Builds run without isolation: every package's build requirements come first
    # (poetry-core for all, cffi and setuptools for mirage-tcpip's accelerator).
    build_requires = sorted(
        {
            req
            for info in PACKAGES.values()
            for req in tomllib.loads((Path(str(info["dir"])) / "pyproject.toml").read_text())[
                "build-system"
            ]["requires"]
        }
    )
    session.install("build", *build_requires)
    out = Path(session.create_tmp()) / "dist"
    session.run("python", "tools/build_all.py", "--out", str(out))
    session.run("python", "tools/check_wheels.py", "--dist", str(out))


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    install_packages(session, list(PACKAGES), *TEST_DEPS, "mypy>=1.10", "nox")
    sources = [str(Path(str(i["dir"])) / "src") for i in PACKAGES.values()]
    session.run(
        "mypy",
        *[arg for info in PACKAGES.values() for arg in ("-p", f"mirage.{info['short']}")],
        env={"MYPYPATH": ":".join(sources)},
    )
    # MYPYPATH=tools: otherwise "import packages" in tools/ means the packages/ folder.
    session.run(
        "mypy", "tools", "noxfile.py", "--ignore-missing-imports", env={"MYPYPATH": "tools"}
    )


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The main job: build the example unikernels on unix, then serve the website.

    ``nox -s demo`` serves examples/static-website on http://localhost:8080/ until
    Ctrl-C; ``nox -s demo -- --check`` fetches its front page once and stops.
    """
    install_packages(session, list(PACKAGES))
    for example, argv in (("hello", ["--count", "2"]), ("kv", [])):
        directory = ROOT / "examples" / example
        session.run("mirage", "-C", str(directory), "configure", "-t", "unix")
        session.run("mirage", "-C", str(directory), "build")
        session.run("mirage", "-C", str(directory), "run", *argv)
    website = ROOT / "examples" / "static-website"
    session.run("mirage", "-C", str(website), "configure", "-t", "unix")
    session.run("mirage", "-C", str(website), "build")
    if "--check" in session.posargs:
        session.run("python", "tools/serve_check.py", str(website / "dist" / "www.pyz"))
    else:
        session.run("mirage", "-C", str(website), "run", "--port", "8080")


for _name, _info in PACKAGES.items():
    _bench_dir = Path(str(_info["dir"])) / "bench"
    if not _bench_dir.is_dir():
        continue

    def _bench(session: nox.Session, name: str = _name, bench_dir: Path = _bench_dir) -> None:
        """Run every bench/*.py of the package: our code beside its peer, with ratios."""
        extras = ("bench",) if "bench" in PACKAGES[name]["extras"] else ()  # type: ignore[operator]
        install_packages(session, list(PACKAGES))
        if extras:
            spec = str(Path(str(PACKAGES[name]["dir"])).relative_to(ROOT))
            session.install("-e", f"{spec}[bench]")
        for script in sorted(bench_dir.glob("*.py")):
            session.run("python", str(script.relative_to(ROOT)), *session.posargs)

    nox.session(name=f"bench-{_info['short']}", python=PYTHON)(_bench)
