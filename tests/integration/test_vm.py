"""The static-website example, unchanged, as a virtual machine answering the host
kernel's HTTP client through our own TCP/IP stack inside the guest, over a TAP device,
and over HTTPS (mirage-tls in the guest, the host's OpenSSL as the client).

The boot matrix (tools/boot_matrix.py, nox -s boot) asks the same website through
QEMU's user-mode network on every target; this test wires the guest's NIC to a TAP
device of a throw-away network namespace instead, where the host kernel is the peer.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Mirage

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-system-x86_64") is None or shutil.which("dpkg-deb") is None,
    reason="needs qemu-system-x86_64 (apt-get install qemu-system-x86) and Debian's dpkg-deb",
)


TAP = ("--vm-net", "tap:mtap0")


def _netns_skip_reason() -> str | None:
    try:
        from mirage.net.testing import netns_skip_reason
    except ImportError:
        return "needs mirage-net's testing helpers"
    return netns_skip_reason()


def _wait_for(child: subprocess.Popen[str], text: str, timeout: float = 180) -> str:
    assert child.stdout is not None
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line and child.poll() is not None:
            break
        seen += line
        if text in line:
            return line
    raise AssertionError(f"no {text!r} on the console:\n{seen}")


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed P-256 certificate for the guest's address, and its key (PEM)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "10.0.0.2")])
    now = datetime.datetime.now(datetime.UTC)
    san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("10.0.0.2"))])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _get(url: str, timeout: float = 60, context: ssl.SSLContext | None = None) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10, context=context) as response:
                assert response.status == 200
                return bytes(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def test_static_website_answers_over_tap_from_a_virtio_guest(
    example: Callable[[str], Path], mirage: Mirage
) -> None:
    reason = _netns_skip_reason()
    if reason:
        pytest.skip(reason)
    from mirage.net.testing import inside_netns, ip

    directory = example("static-website")
    result = mirage(directory, "configure", "-t", "virtio")
    assert result.returncode == 0, result.stderr
    result = mirage(directory, "build", timeout=600)
    assert result.returncode == 0, result.stderr
    cert, key = _certificate(directory)
    tls = ("--tls-cert", str(cert), "--tls-key", str(key))
    with inside_netns():
        ip("tuntap", "add", "dev", "mtap0", "mode", "tap")
        ip("addr", "add", "10.0.0.1/24", "dev", "mtap0")
        ip("link", "set", "mtap0", "up")
        child = subprocess.Popen(
            [sys.executable, "-m", "mirage.core", "-C", str(directory), "run", *TAP, *tls],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            line = _wait_for(child, "serving")
            assert line == "static-website: serving on http://10.0.0.2:8080/\n"
            line = _wait_for(child, "serving")
            assert line == "static-website: serving on https://10.0.0.2:8443/\n"
            plain = _get("http://10.0.0.2:8080/")
            assert b"Hello from a unikernel" in plain
            context = ssl.create_default_context(cafile=str(cert))
            assert _get("https://10.0.0.2:8443/", context=context) == plain
        finally:
            child.terminate()
            child.communicate(timeout=60)
    assert child.returncode == 0
