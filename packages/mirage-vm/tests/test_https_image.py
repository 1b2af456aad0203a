"""HTTPS in images: host files named by path arguments, and what TLS brings in."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from test_units import _append_of, _guest_argv, _notes, read_cpio

from mirage.vm._arch import ARCHES
from mirage.vm._cpio import CpioWriter
from mirage.vm._image import _tls_extras, _wants_tls
from mirage.vm._target import host_files, qemu_command


def _image(tmp_path: Path) -> Path:
    initrd = tmp_path / "web.initrd"
    with initrd.open("wb") as out:
        cpio = CpioWriter(out)
        cpio.file("init", b"#!/bin/python\n", 0o755)
        cpio.close()
    return initrd


def _site_notes() -> dict[str, Any]:
    notes: dict[str, Any] = dict(_notes("direct", forward="8443:8443"))
    notes["runtime_args"] = ["interface", "ipv4", "ipv4-gateway", "port", "tls-cert", "tls-key"]
    notes["path_args"] = ["tls-cert", "tls-key"]
    return notes


def test_path_arguments_naming_host_files_go_into_an_appended_archive(tmp_path: Path) -> None:
    initrd = _image(tmp_path)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(b"CERT")
    key.write_bytes(b"KEY")
    argv, booted = host_files(
        _site_notes(),
        ["--tls-cert", str(cert), f"--tls-key={key}", "--port", str(cert)],
        initrd,
        tmp_path / "web.run.initrd",
    )
    assert argv == [
        "--tls-cert",
        "/run/mirage-files/0/cert.pem",
        "--tls-key=/run/mirage-files/1/key.pem",
        "--port",  # not a path argument: left alone
        str(cert),
    ]
    data = booted.read_bytes()
    base = initrd.read_bytes()
    assert data.startswith(base)  # the image, then a second archive
    files = {name: body for name, _mode, body, _dev in read_cpio(data[len(base) :])}
    assert files["run/mirage-files/0/cert.pem"] == b"CERT"
    assert files["run/mirage-files/1/key.pem"] == b"KEY"


def test_without_host_files_the_image_boots_as_built(tmp_path: Path) -> None:
    initrd = _image(tmp_path)
    argv, booted = host_files(
        _site_notes(), ["--tls-cert", "/etc/in-guest.pem"], initrd, tmp_path / "x"
    )
    assert argv == ["--tls-cert", "/etc/in-guest.pem"] and booted == initrd
    assert not (tmp_path / "x").exists()


def test_qemu_boots_the_image_with_the_files(tmp_path: Path) -> None:
    _image(tmp_path)
    (tmp_path / "web.vm.json").write_text(json.dumps(_site_notes()))
    cert = tmp_path / "cert.pem"
    cert.write_bytes(b"CERT")
    command = qemu_command(tmp_path, "web", ["--tls-cert", str(cert)])
    assert command[command.index("-initrd") + 1] == "web.run.initrd"
    assert _guest_argv(_append_of(command))[-2:] == ["--tls-cert", "/run/mirage-files/0/cert.pem"]
    plain = qemu_command(tmp_path, "web", [])
    assert plain[plain.index("-initrd") + 1] == "web.initrd"


def _ctx(requires: list[str]) -> Any:
    plan = SimpleNamespace(requires=requires, devices=[])
    return SimpleNamespace(plan=plan)


def test_tls_is_wanted_when_the_application_requires_mirage_tls() -> None:
    assert _wants_tls(_ctx(["mirage-http>=0.1,<1", "mirage-tls>=0.1,<1"]), set())
    assert _wants_tls(_ctx(["mirage-tls"]), set())
    assert not _wants_tls(_ctx(["mirage-http>=0.1,<1", "mirage-tls-extra"]), set())
    assert _wants_tls(_ctx([]), {"mirage.tls"})
    assert _tls_extras(_ctx(["mirage-http"]), ARCHES["x86_64"], set()) == []


def test_tls_for_another_architecture_starts_from_the_build_environments_files() -> None:
    # The trace runs on these; _for_arch then maps them to the image's architecture.
    pytest.importorskip("mirage.tls", reason="needs mirage-tls installed")
    other = next(a for name, a in ARCHES.items() if name != platform.machine())
    files = _tls_extras(_ctx(["mirage-tls"]), other, set())
    assert isinstance(files, list)
    assert any(rel == "cryptography/hazmat/bindings/_rust.abi3.so" for rel, _ in files)


@pytest.mark.skipif(platform.machine() != "x86_64", reason="checks the x86_64 image")
def test_tls_brings_mirage_tls_and_compiled_cryptography() -> None:
    pytest.importorskip("mirage.tls", reason="needs mirage-tls installed")
    files = _tls_extras(_ctx(["mirage-tls"]), ARCHES["x86_64"], set())
    assert isinstance(files, list)
    names = {rel for rel, _path in files}
    assert "mirage/tls/__init__.py" in names and "mirage/tls/_plugin.py" not in names
    assert "cryptography/hazmat/bindings/_rust.abi3.so" in names
    assert any(n.startswith("_cffi_backend") for n in names)
    assert not any("__pycache__" in n for n in names)


def test_a_disk_goes_to_qemu_and_libvirt(tmp_path: Path) -> None:
    import shutil
    import subprocess

    from mirage.core import MirageError
    from mirage.vm._target import _libvirt_xml

    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(1024))
    notes: dict[str, Any] = {**_notes(None), "block": True, "disk": str(disk)}
    (tmp_path / "app.vm.json").write_text(json.dumps(notes))
    command = qemu_command(tmp_path, "app", [])
    assert f"file={disk},format=raw,if=none,id=disk0" in command
    assert "virtio-blk-pci,drive=disk0" in command
    other = tmp_path / "other.img"
    other.write_bytes(bytes(512))
    assert f"file={other},format=raw,if=none,id=disk0" in qemu_command(
        tmp_path, "app", [], {"disk": str(other)}
    )
    with pytest.raises(MirageError, match="no disk image"):
        qemu_command(tmp_path, "app", [], {"disk": str(tmp_path / "missing.img")})
    (tmp_path / "bare.vm.json").write_text(json.dumps(_notes(None)))
    with pytest.raises(MirageError, match="no disk driver"):
        qemu_command(tmp_path, "bare", [], {"disk": str(disk)})
    xml = _libvirt_xml(tmp_path, "app", ARCHES["x86_64"])
    assert f"<source file='{disk}'/><target dev='vda' bus='virtio'/>" in xml
    if shutil.which("virt-xml-validate") is None:
        pytest.skip("needs virt-xml-validate (apt-get install libvirt-clients)")
    (tmp_path / "app.xml").write_text(xml)
    checked = subprocess.run(
        ["virt-xml-validate", str(tmp_path / "app.xml"), "domain"], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
