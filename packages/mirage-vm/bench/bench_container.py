"""bench-vm, container: the static website's image size beside a container image of it.

The issue asks for the size of a container image of the same application on
``python:3.11-slim``. No container registry is reachable from these machines and no
container engine is installed, so that image cannot be pulled; this bench builds the
nearest faithful STAND-IN itself and says so in its output:

- base layer: what ``debian:bookworm-slim`` is, a ``minbase`` bookworm root file
  system (merged /usr, as Debian's images have it) built by ``mmdebstrap`` with the
  dpkg path excludes of Debian's container images (no documentation but copyright
  files, no manual or info pages, no locales, groff, lintian or linda files), from the
  Debian mirror this machine's own apt sources name;
- python layer: what ``python:3.11-slim`` adds, ``ca-certificates``, ``netbase``,
  ``tzdata`` and a CPython 3.11, here Debian's ``python3.11`` package (the official
  image builds CPython from source into /usr/local and removes its bytecode; Debian's
  package installs into /usr and byte-compiles its standard library); the layer is
  the difference between the root file system with and without them (new and changed
  entries, whiteouts for removed ones), as a container build would record it;
- application layer: the website's dependencies (the in-repo packages it needs, built
  from source, and their dependencies from the configured package index) installed
  with pip under /usr/local/lib/python3.11/dist-packages, and the example itself
  (unikernel.py, config.py, htdocs/) in /app, configured and built for the ``unix``
  target (``dist/www.pyz``, the image's command).

Each layer is a tar, measured raw and gzip -6 compressed (what a registry stores);
the three are written as an OCI image layout whose digests the bench checks, and,
when run as root, unpacked in order and started under chroot to answer one HTTP
request on loopback (so the stand-in is the same working application).

Beside it, our image of the same application: ``mirage configure -t virtio`` and
``build`` on a copy of examples/static-website, its initramfs raw and gzip -6 (the
kernel excluded, as the issue's goal says) and with the kernel, and the initramfs as
built with ``--vm-compress xz`` (the smallest artifact). Last, the Python part
alone: the interpreter and /usr/lib/python3.11 in the stand-in, against the traced
standard-library subset in our initramfs: one source of the difference, the other
being the base system, of which our image carries only libc and the libraries the
traced modules load.

Goal (issue): our image under 8 MB compressed with the kernel excluded; the container
is the baseline, size only.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SITE = ROOT / "examples" / "static-website"
MIB = 2**20

SUITES = ("bookworm", "bookworm-updates", "bookworm-security")
# The path excludes of Debian's container images (dpkg.cfg.d), in dpkg's order.
SLIM_PATHS = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/groff/*",
    "path-exclude=/usr/share/lintian/*",
    "path-exclude=/usr/share/linda/*",
)
# Documented in mmdebstrap(1): merged /usr by symlinks, without the usrmerge package
# (which would pull perl into the base, which debian:bookworm-slim does not have).
MERGED_USR_HOOKS = "/usr/share/mmdebstrap/hooks/merged-usr"
PYTHON_LAYER = ("ca-certificates", "netbase", "tzdata", "python3.11")
# The in-repo packages the website needs (HTTP/2 over TLS via ALPN: h2).
APP_PACKAGES = (
    "mirage-core",
    "mirage-unix",
    "mirage-kv",
    "mirage-net",
    "mirage-tcpip",
    "mirage-http[http2]",
    "mirage-tls",
)
SITE_PACKAGES = "usr/local/lib/python3.11/dist-packages"
COMMAND = ["python3.11", "/app/dist/www.pyz"]

HEADER = """\
CONTAINER STAND-IN, NOT python:3.11-slim ITSELF: no container registry is reachable
from this machine and no container engine is installed, so it is built here instead:
  base:   debian:bookworm-slim-like (mmdebstrap minbase bookworm, merged /usr, the
          dpkg path excludes of Debian's container images)
  python: ca-certificates, netbase, tzdata and Debian's python3.11 package
          (python:3.11-slim builds CPython from source into /usr/local instead)
  app:    the website's packages (pip install --target) and the site in /app
written as an OCI image layout (size only: the container baseline of the issue)."""

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


# -- the machine's Debian mirror ---------------------------------------------------


def _one_line_sources(text: str) -> Iterator[tuple[str, str, list[str]]]:
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
        if len(words) >= 4 and words[0] == "deb":
            yield words[1], words[2], words[3:]


def _deb822_sources(text: str) -> Iterator[tuple[str, str, list[str]]]:
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    for stanza in "\n".join(lines).split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if line[:1].isspace() and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                key = key.strip().lower()
                fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled") == "no":
            continue
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                yield uri, suite, fields.get("components", "").split()


def debian_mirrors() -> list[str]:
    """mmdebstrap mirror lines for bookworm's main component, from apt's sources."""
    apt = Path("/etc/apt")
    found: list[str] = []
    files = [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*"))]
    for path in files:
        if not path.is_file():
            continue
        if path.suffix == ".sources":
            entries = _deb822_sources(path.read_text())
        elif path.suffix == ".list":
            entries = _one_line_sources(path.read_text())
        else:
            continue
        for uri, suite, components in entries:
            line = f"deb {uri} {suite} main"
            if suite in SUITES and "main" in components and line not in found:
                found.append(line)
    return found


def have_mmdebstrap() -> bool:
    if shutil.which("mmdebstrap") is None and os.geteuid() == 0:
        print("installing mmdebstrap (apt-get install -y mmdebstrap)")
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "mmdebstrap"],
            check=False,
            stdout=subprocess.DEVNULL,
        )
    if shutil.which("mmdebstrap") is None:
        print("bench-vm (container) needs mmdebstrap: apt-get install mmdebstrap")
        return False
    return True


# -- the layers ----------------------------------------------------------------------


def run_quietly(command: list[str], attempts: int = 1) -> None:
    """Run ``command``, showing its output only if it fails ``attempts`` times."""
    for attempt in range(1, attempts + 1):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode == 0:
            return
        if attempt < attempts:  # a mirror in the middle of a sync, say
            print(f"{command[0]} failed ({done.returncode}), once more in 10 s")
            time.sleep(10)
    sys.stderr.write(done.stdout + done.stderr)
    raise SystemExit(f"failed ({done.returncode}): {' '.join(command[:4])} ...")


def rootfs(out: Path, mirrors: list[str], include: tuple[str, ...] = ()) -> None:
    """A slim minbase bookworm root file system as a tar."""
    command = ["mmdebstrap", "--variant=minbase", f"--hook-dir={MERGED_USR_HOOKS}"]
    command += ['--aptopt=Acquire::Check-Valid-Until "false"']
    command += [f"--dpkgopt={option}" for option in SLIM_PATHS]
    if include:
        command.append("--include=" + ",".join(include))
    run_quietly([*command, "bookworm", str(out), *mirrors], attempts=2)


_TIMES = ("mtime", "atime", "ctime")


def _signature(archive: tarfile.TarFile, member: tarfile.TarInfo) -> tuple[object, ...]:
    """What makes an entry the same in two trees (not its time stamp)."""
    digest = ""
    if member.isfile():
        data = archive.extractfile(member)
        assert data is not None
        digest = hashlib.sha256(data.read()).hexdigest()
    return (
        member.type,
        member.mode,
        member.uid,
        member.gid,
        member.linkname,
        member.devmajor,
        member.devminor,
        digest,
        tuple(sorted(i for i in member.pax_headers.items() if i[0] not in _TIMES)),
    )


def diff_layer(lower: Path, upper: Path, out: Path) -> int:
    """Write the layer that turns tree ``lower`` into ``upper``; its entry count."""
    with tarfile.open(lower) as archive:
        before = {m.name: _signature(archive, m) for m in archive.getmembers()}
    with tarfile.open(upper) as archive, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        members = archive.getmembers()
        names = {m.name for m in members}
        wanted = {m.name for m in members if before.get(m.name) != _signature(archive, m)}
        for member in members:  # a hard link needs its target in the same layer
            if member.islnk() and member.name in wanted:
                wanted.add(member.linkname)
        for name in list(wanted):  # and, as a container build writes it, its parents
            parts = name.split("/")
            wanted.update("/".join(parts[:i]) for i in range(1, len(parts)))
        wanted &= names
        count = 0
        for member in members:
            if member.name in wanted:
                tar.addfile(member, archive.extractfile(member) if member.isfile() else None)
                count += 1
        for name in sorted(set(before) - names):
            parent, _, base = name.rpartition("/")
            if parent in names:  # a removed directory's own whiteout covers its contents
                tar.addfile(_entry(f"{parent}/.wh.{base}", tarfile.REGTYPE, 0o644))
                count += 1
    return count


def _entry(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    return info


def mirage(project: Path, *args: str) -> None:
    run_quietly([sys.executable, "-m", "mirage.core", "-C", str(project), *args])


def copy_site(to: Path) -> Path:
    shutil.copytree(SITE, to, ignore=shutil.ignore_patterns("mirage", "dist", "__pycache__"))
    return to


def app_layer(out: Path, work: Path) -> None:
    """The website's dependencies under /usr/local and the site, built, in /app."""
    stage = work / "app-root"
    site_packages = stage / SITE_PACKAGES
    specs = []
    for spec in APP_PACKAGES:
        name, _, extra = spec.partition("[")
        specs.append(str(ROOT / "packages" / name) + (f"[{extra}" if extra else ""))
    run_quietly(
        [sys.executable, "-m", "pip", "install", "-q", "--target", str(site_packages), *specs]
    )
    # Console scripts name this host's interpreter; the image runs `python3.11 -m ...`.
    shutil.rmtree(site_packages / "bin", ignore_errors=True)
    app = copy_site(stage / "app")
    mirage(app, "configure", "-t", "unix")
    mirage(app, "build")

    def owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = 0
        return info

    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for top in sorted(stage.iterdir()):
            tar.add(top, arcname=f"./{top.name}", filter=owned_by_root)


# -- the OCI image layout ---------------------------------------------------------------


def _blob(layout: Path, data: bytes, media_type: str) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}


def oci_image(layout: Path, layers: list[tuple[str, bytes, bytes]]) -> int:
    """Write an OCI image layout of ``(history, tar, gzip)`` layers; manifest size."""
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": COMMAND,
            "WorkingDir": "/app",
            "ExposedPorts": {"8080/tcp": {}, "8443/tcp": {}},
        },
        "rootfs": {
            "type": "layers",
            "diff_ids": [f"sha256:{hashlib.sha256(raw).hexdigest()}" for _, raw, _ in layers],
        },
        "history": [{"created_by": history} for history, _, _ in layers],
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": _blob(layout, json.dumps(config).encode(), OCI_CONFIG),
        "layers": [_blob(layout, packed, OCI_LAYER) for _, _, packed in layers],
    }
    encoded = json.dumps(manifest).encode()
    entry = _blob(layout, encoded, OCI_MANIFEST)
    entry["annotations"] = {"org.opencontainers.image.ref.name": "static-website-stand-in"}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"}
    index["manifests"] = [entry]
    (layout / "index.json").write_text(json.dumps(index))
    return len(encoded)


def _checked(layout: Path, descriptor: dict[str, object]) -> bytes:
    algorithm, _, digest = str(descriptor["digest"]).partition(":")
    data = (layout / "blobs" / algorithm / digest).read_bytes()
    if hashlib.sha256(data).hexdigest() != digest or len(data) != descriptor["size"]:
        raise SystemExit(f"OCI layout: blob {digest} does not match its descriptor")
    return data


def verify_oci(layout: Path) -> list[bytes]:
    """Follow index -> manifest -> config and layers, checking every digest and size
    and the config's diff_ids against the uncompressed layers; the layers' tars."""
    if json.loads((layout / "oci-layout").read_text())["imageLayoutVersion"] != "1.0.0":
        raise SystemExit("OCI layout: bad oci-layout")
    (entry,) = json.loads((layout / "index.json").read_text())["manifests"]
    manifest = json.loads(_checked(layout, entry))
    config = json.loads(_checked(layout, manifest["config"]))
    tars = [gzip.decompress(_checked(layout, layer)) for layer in manifest["layers"]]
    diff_ids = [f"sha256:{hashlib.sha256(raw).hexdigest()}" for raw in tars]
    if diff_ids != config["rootfs"]["diff_ids"]:
        raise SystemExit("OCI layout: diff_ids do not match the layers")
    return tars


# -- running the stand-in -------------------------------------------------------------


def unpack_layers(tars: list[bytes], root: Path) -> None:
    """Apply layers in order, as a container engine does (whiteouts remove)."""
    for raw in tars:
        with tarfile.open(fileobj=io.BytesIO(raw)) as archive:
            for member in archive.getmembers():
                parent, _, base = member.name.rpartition("/")
                if base.startswith(".wh."):
                    victim = root / parent / base.removeprefix(".wh.")
                    if victim.is_dir() and not victim.is_symlink():
                        shutil.rmtree(victim)
                    else:
                        victim.unlink(missing_ok=True)
                else:
                    archive.extract(member, root, set_attrs=True, numeric_owner=True)


def serves(root: Path) -> str:
    """Start the image's command under chroot; what the first HTTP answer says."""
    chroot = shutil.which("chroot") or shutil.which("chroot", path="/usr/sbin:/sbin")
    if os.geteuid() != 0 or chroot is None:
        return "not run (needs root and chroot)"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    child = subprocess.Popen(
        [chroot, str(root), *COMMAND, "--port", str(port), "--ipv4", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/root"},
    )
    try:
        for _ in range(240):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as r:
                    return f"HTTP {r.status}, {len(r.read())} bytes"
            except OSError:
                if child.poll() is not None:
                    return f"FAILED: exited with {child.returncode}"
                time.sleep(0.25)
        return "FAILED: no answer within 60 s"
    finally:
        child.kill()
        child.wait()


# -- measuring ------------------------------------------------------------------------


def newc_sizes(data: bytes) -> Iterator[tuple[str, int]]:
    """(name, size) of each entry of a cpio newc archive."""
    offset = 0
    while offset + 110 <= len(data) and data[offset : offset + 6] == b"070701":
        header = data[offset : offset + 110]
        size, name_size = int(header[54:62], 16), int(header[94:102], 16)
        name = data[offset + 110 : offset + 110 + name_size - 1].decode()
        if name == "TRAILER!!!":
            return
        offset = (offset + 110 + name_size + 3) & ~3
        offset = (offset + size + 3) & ~3
        yield name, size


def tar_sizes(raw: bytes) -> Iterator[tuple[str, int]]:
    with tarfile.open(fileobj=io.BytesIO(raw)) as archive:
        for member in archive:
            yield member.name.removeprefix("./"), member.size if member.isfile() else 0


def python_part(entries: Iterator[tuple[str, int]]) -> tuple[int, int]:
    """Bytes of the interpreter and its standard library; of which bytecode."""
    total = pyc = 0
    for name, size in entries:
        if name == "usr/bin/python3.11" or name.startswith("usr/lib/python3.11/"):
            total += size
            pyc += size if name.endswith(".pyc") else 0
    return total, pyc


def row(label: str, raw: int, packed: int) -> None:
    print(f"{label:<44} {raw / MIB:7.1f} MiB raw {packed / MIB:7.1f} MiB gzip")


def our_image(work: Path, *options: str) -> tuple[bytes, int]:
    """The website's virtio initramfs and its kernel's size."""
    site = copy_site(work / ("static-website" + "".join(options)))
    mirage(site, "configure", "-t", "virtio", *options)
    mirage(site, "build")
    dist = site / "dist"
    return (dist / "www.initrd").read_bytes(), (dist / "www.kernel").stat().st_size


def stand_in(work: Path, mirrors: list[str]) -> list[tuple[str, bytes, bytes]]:
    """The three layers as (what made it, tar, gzip -6 of the tar)."""
    base, full, python, app = (work / f"{n}.tar" for n in ("base", "full", "python", "app"))
    rootfs(base, mirrors)
    rootfs(full, mirrors, PYTHON_LAYER)
    diff_layer(base, full, python)
    app_layer(app, work)
    made = [
        "mmdebstrap --variant=minbase bookworm (slim path excludes)",
        "+ " + " ".join(PYTHON_LAYER) + " (Debian packages)",
        "pip install --target the website's packages; the site in /app, built (unix)",
    ]
    layers = []
    for history, path in zip(made, (base, python, app), strict=True):
        raw = path.read_bytes()
        layers.append((history, raw, gzip.compress(raw, 6, mtime=0)))
    return layers


def main() -> int:
    if not have_mmdebstrap():
        return 1
    mirrors = debian_mirrors()
    if not any(f" {SUITES[0]} " in line for line in mirrors):
        print("bench-vm (container) found no Debian bookworm mirror in apt's sources")
        return 1
    print(HEADER)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        initrd, kernel = our_image(work)
        shipped = len(our_image(work, "--vm-compress", "xz")[0])
        layers = stand_in(work, mirrors)
        layout = work / "oci"
        oci_image(layout, layers)
        tars = verify_oci(layout)
        blobs = len(list((layout / "blobs" / "sha256").iterdir()))
        print(f"OCI image layout: {blobs} blobs, digests, sizes and diff_ids verified")
        unpack_layers(tars, work / "rootfs")
        answer = serves(work / "rootfs")
        print(f"stand-in started under chroot, GET / on loopback: {answer}")

    print()
    names = ("base (bookworm-slim-like)", "python (Debian's python3.11)", "application")
    for name, (_, raw, packed) in zip(names, layers, strict=True):
        row(f"stand-in layer: {name}", len(raw), len(packed))
    container_raw = sum(len(raw) for _, raw, _ in layers)
    container_packed = sum(len(packed) for _, _, packed in layers)
    row("stand-in image, total (its layers)", container_raw, container_packed)
    ours_packed = len(gzip.compress(initrd, 6, mtime=0))
    row("ours: initramfs (kernel excluded)", len(initrd), ours_packed)
    row("ours: initramfs + kernel (bzImage as is)", len(initrd) + kernel, ours_packed + kernel)
    print(f"{'ours: initramfs, --vm-compress xz':<44} {shipped / MIB:7.1f} MiB as shipped")
    for label, theirs_size, mine_size in (
        ("gzip", container_packed, ours_packed),
        ("raw", container_raw, len(initrd)),
    ):
        print(
            f"stand-in / ours ({label}): {theirs_size / mine_size:.1f}x kernel excluded,"
            f" {theirs_size / (mine_size + kernel):.1f}x with the kernel"
        )
    print(f"stand-in (gzip) / our xz initramfs: {container_packed / shipped:.1f}x")
    theirs, theirs_pyc = python_part(tar_sizes(layers[1][1]))
    mine, mine_pyc = python_part(newc_sizes(initrd))
    print(
        "python part alone (the python3.11 binary and /usr/lib/python3.11, raw):\n"
        f"  stand-in {theirs / MIB:.1f} MiB ({theirs_pyc / MIB:.1f} MiB of it .pyc),"
        f" ours {mine / MIB:.1f} MiB ({mine_pyc / MIB:.1f} MiB of it .pyc): {theirs / mine:.1f}x"
    )
    print(f"bench time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
