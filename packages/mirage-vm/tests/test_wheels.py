"""Wheels for another architecture: which file fits, the cache, and the mapping of the
build environment's compiled packages to the image architecture's files."""

from __future__ import annotations

import importlib.metadata
import platform
import zipfile
from pathlib import Path

import pytest

from mirage.core import MirageError
from mirage.vm import _wheels
from mirage.vm._arch import ARCHES
from mirage.vm._image import _for_arch, _wheel_files
from mirage.vm._wheels import fetch_wheel, parse_wheel, select_wheel, unpack_wheel

CRYPTO = [
    "cryptography-50.0.2-cp311-abi3-manylinux_2_28_x86_64.whl",
    "cryptography-50.0.2-cp311-abi3-manylinux_2_34_aarch64.whl",
    "cryptography-50.0.2-cp311-abi3-manylinux_2_28_aarch64.whl",
    "cryptography-50.0.2-cp311-abi3-manylinux_2_39_aarch64.whl",  # newer glibc than 2.36
    "cryptography-50.0.2-cp311-abi3-musllinux_1_2_aarch64.whl",
    "cryptography-50.0.2-cp313-abi3-manylinux_2_17_aarch64.whl",  # needs CPython 3.13
    "cryptography-49.0.0-cp311-abi3-manylinux_2_28_aarch64.whl",
    "cryptography-50.0.2.tar.gz",
]
CFFI = [
    "cffi-2.1.1-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
    "cffi-2.1.1-cp312-cp312-manylinux2014_aarch64.manylinux_2_17_aarch64.whl",
    "cffi-2.1.1-cp311-cp311-manylinux2014_aarch64.manylinux_2_17_aarch64.whl",
    "cffi-2.1.1-cp311-cp311-musllinux_1_1_aarch64.whl",
]


def test_a_wheel_name_is_split_into_its_tags() -> None:
    name = parse_wheel(CFFI[2])
    assert name is not None
    assert (name.project, name.version) == ("cffi", "2.1.1")
    assert name.pythons == ("cp311",) and name.abis == ("cp311",)
    assert name.platforms == ("manylinux2014_aarch64", "manylinux_2_17_aarch64")
    assert parse_wheel("cryptography-50.0.2.tar.gz") is None
    assert parse_wheel("Foo.Bar-1.0-1-py3-none-any.whl") is not None


def test_the_newest_manylinux_the_runtime_glibc_loads_is_chosen() -> None:
    chosen = select_wheel(CRYPTO, "cryptography", "50.0.2", "aarch64")
    assert chosen == "cryptography-50.0.2-cp311-abi3-manylinux_2_34_aarch64.whl"
    older = select_wheel(CRYPTO, "cryptography", "50.0.2", "aarch64", glibc=(2, 31))
    assert older == "cryptography-50.0.2-cp311-abi3-manylinux_2_28_aarch64.whl"
    assert select_wheel(CRYPTO, "cryptography", "50.0.2", "aarch64", glibc=(2, 17)) is None
    assert select_wheel(CRYPTO, "cryptography", "49.0.0", "aarch64") == CRYPTO[6]
    assert select_wheel(CRYPTO, "cryptography", "50.0.2", "x86_64") == CRYPTO[0]
    assert select_wheel(CRYPTO, "cryptography", "50.0.2", "armv7l") is None
    # The stable ABI built for 3.13 needs 3.13 or later:
    assert select_wheel(CRYPTO[5:6], "cryptography", "50.0.2", "aarch64", python=(3, 11)) is None
    assert (
        select_wheel(CRYPTO[5:6], "cryptography", "50.0.2", "aarch64", python=(3, 13)) == CRYPTO[5]
    )


def test_an_abi_specific_wheel_must_match_the_runtime_python() -> None:
    assert select_wheel(CFFI, "cffi", "2.1.1", "aarch64") == CFFI[2]
    assert select_wheel(CFFI, "cffi", "2.1.1", "aarch64", python=(3, 12)) == CFFI[1]
    assert select_wheel(CFFI, "cffi", "2.1.1", "aarch64", python=(3, 10)) is None
    assert select_wheel(CFFI, "CFFI", "2.1.1", "aarch64") == CFFI[2]  # names are normalised


def test_only_manylinux_wheels_are_taken() -> None:
    names = ["six-1.16.0-py2.py3-none-any.whl"]
    assert select_wheel(names, "six", "1.16.0", "aarch64") is None  # "any" is no manylinux
    assert select_wheel(["x-1.0-cp311-cp311-linux_aarch64.whl"], "x", "1.0", "aarch64") is None


def _wheel(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def test_a_cached_wheel_is_used_without_pip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIRAGE_CACHE", str(tmp_path))
    folder = tmp_path / "wheels"
    folder.mkdir()
    name = CRYPTO[2]
    _wheel(
        folder / name, {"cryptography/__init__.py": b"", "cryptography/_rust.abi3.so": b"\x7fELF"}
    )

    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip ran although the wheel is cached")

    monkeypatch.setattr(_wheels.subprocess, "run", no_pip)
    wheel = fetch_wheel("cryptography", "50.0.2", "aarch64")
    assert wheel == folder / name
    unpacked = unpack_wheel(wheel)
    assert (unpacked / "cryptography" / "_rust.abi3.so").read_bytes() == b"\x7fELF"
    assert unpack_wheel(wheel) == unpacked  # once
    assert [rel for rel, _ in _wheel_files(unpacked, "cryptography")] == [
        "cryptography/__init__.py",
        "cryptography/_rust.abi3.so",
    ]


def test_a_wheel_with_an_unsafe_path_is_refused(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path / "evil-1.0-cp311-cp311-manylinux2014_aarch64.whl", {"../x.py": b""})
    with pytest.raises(MirageError, match="unsafe path"):
        unpack_wheel(wheel)


def test_pip_failing_names_the_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIRAGE_CACHE", str(tmp_path))
    seen: list[list[str]] = []

    class Failed:
        returncode = 1
        stdout = ""
        stderr = "ERROR: No matching distribution found for nothing==1.0"

    def fake_pip(argv: list[str], **kwargs: object) -> Failed:
        seen.append(argv)
        return Failed()

    monkeypatch.setattr(_wheels.subprocess, "run", fake_pip)
    with pytest.raises(MirageError, match=r"no aarch64 wheel of nothing 1\.0 .*No matching"):
        fetch_wheel("nothing", "1.0", "aarch64")
    argv = seen[0]
    assert argv[1:4] == ["-m", "pip", "download"] and "--only-binary=:all:" in argv
    assert "manylinux2014_aarch64" in argv and "manylinux_2_28_aarch64" in argv
    assert argv[argv.index("--python-version") + 1] == "3.11" and argv[-1] == "nothing==1.0"
    # armv7 wheels say armv7l, and are manylinux_2_31 (bookworm's C library is 2.36).
    with pytest.raises(MirageError, match=r"no armv7l wheel of nothing 1\.0"):
        fetch_wheel("nothing", "1.0", "armv7")
    assert "manylinux_2_31_armv7l" in seen[1] and "manylinux_2_36_armv7l" in seen[1]
    assert not any(tag.endswith("_armv7") for tag in seen[1])


def _other() -> str:
    return next(name for name in ARCHES if name != platform.machine())


def test_compiled_packages_are_mapped_to_the_other_architectures_wheels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        crypto = importlib.metadata.version("cryptography")
        cffi = importlib.metadata.version("cffi")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("needs cryptography and cffi installed (the build environment's)")
    monkeypatch.setenv("MIRAGE_CACHE", str(tmp_path))
    arch = _other()
    folder = tmp_path / "wheels"
    folder.mkdir()
    tag = f"manylinux_2_17_{arch}"
    _wheel(
        folder / f"cryptography-{crypto}-cp311-abi3-{tag}.whl",
        {
            "cryptography/__init__.py": b"",
            "cryptography/hazmat/bindings/_rust.abi3.so": b"ARM",
            f"cryptography-{crypto}.dist-info/METADATA": b"",
        },
    )
    _wheel(
        folder / f"cffi-{cffi}-cp311-cp311-{tag}.whl",
        {f"_cffi_backend.cpython-311-{arch}-linux-gnu.so": b"ARM", "cffi/__init__.py": b""},
    )
    here = Path(__file__)
    host = [
        ("mirage/tls/__init__.py", here),
        ("cryptography/__init__.py", here),
        ("cryptography/hazmat/bindings/_rust.abi3.so", here),
        ("cryptography/x509/verification.py", here),  # only in the host's copy
        (f"_cffi_backend.cpython-311-{platform.machine()}-linux-gnu.so", here),
    ]
    mapped = _for_arch(host, ARCHES[arch])
    assert isinstance(mapped, list)
    rels = dict(mapped)
    assert sorted(rels) == sorted(
        [
            "mirage/tls/__init__.py",  # pure Python: the host's
            "cryptography/__init__.py",
            "cryptography/hazmat/bindings/_rust.abi3.so",
            f"_cffi_backend.cpython-311-{arch}-linux-gnu.so",
        ]
    )
    assert rels["mirage/tls/__init__.py"] == here
    assert rels["cryptography/hazmat/bindings/_rust.abi3.so"].read_bytes() == b"ARM"
    # The host's own architecture keeps the host's files.
    assert _for_arch(host, ARCHES[platform.machine()]) == host


def test_a_wheel_that_cannot_be_had_leaves_https_out_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("cryptography", reason="needs cryptography installed")

    def offline(project: str, version: str, arch: str, *args: object) -> Path:
        raise MirageError(f"no {arch} wheel of {project} {version} for CPython 3.11: offline")

    monkeypatch.setattr(_wheels, "fetch_wheel", offline)
    host = [("cryptography/hazmat/bindings/_rust.abi3.so", Path(__file__))]
    note = _for_arch(host, ARCHES[_other()])
    assert isinstance(note, str)
    assert note.startswith("mirage-tls (no ") and "wheel of cryptography" in note
