"""The /dev/xen backend: ioctl layouts against Linux's headers; the devices where
they exist (they need a Xen host, so those tests skip elsewhere, naming why)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from mirage.core.testing import run
from mirage.xen import HypervisorError
from mirage.xen._linux_abi import (
    GNTCOPY_DEST_GREF,
    GNTCOPY_SOURCE_GREF,
    REQUESTS,
    SEQ_CST,
    atomics,
    ffi,
)
from mirage.xen.linux import LinuxDomain, available

STRUCTS = {
    "gntalloc": {
        "ioctl_gntalloc_alloc_gref": ("domid", "flags", "count", "index", "gref_ids"),
        "ioctl_gntalloc_dealloc_gref": ("index", "count"),
        "ioctl_gntalloc_unmap_notify": ("index", "action", "event_channel_port"),
    },
    "gntdev": {
        "ioctl_gntdev_grant_ref": ("domid", "ref"),
        "ioctl_gntdev_map_grant_ref": ("count", "pad", "index", "refs"),
        "ioctl_gntdev_unmap_grant_ref": ("index", "count", "pad"),
        "ioctl_gntdev_set_max_grants": ("count",),
        "ioctl_gntdev_unmap_notify": ("index", "action", "event_channel_port"),
        "gntdev_grant_copy_segment": ("source", "dest", "len", "flags", "status"),
        "ioctl_gntdev_grant_copy": ("count", "segments"),
    },
    "evtchn": {
        "ioctl_evtchn_bind_interdomain": ("remote_domain", "remote_port"),
        "ioctl_evtchn_bind_unbound_port": ("remote_domain",),
        "ioctl_evtchn_unbind": ("port",),
        "ioctl_evtchn_notify": ("port",),
    },
}


def header_layout() -> dict[str, int]:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    for name in STRUCTS:
        if not os.path.exists(f"/usr/include/xen/{name}.h"):
            pytest.skip(f"/usr/include/xen/{name}.h is missing (Debian package linux-libc-dev)")
    if not os.path.exists("/usr/include/xen/sys/xenbus_dev.h"):
        pytest.skip("/usr/include/xen/sys/xenbus_dev.h is missing (Debian package libxen-dev)")
    if not os.path.exists("/usr/include/xen/grant_table.h"):
        pytest.skip("/usr/include/xen/grant_table.h is missing (Debian package libxen-dev)")
    lines = [
        "#include <stdio.h>",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "#include <sys/ioctl.h>",
        "#include <xen/xen.h>",
        "#include <xen/grant_table.h>",
        *(f"#include <xen/{name}.h>" for name in STRUCTS),
        "#include <xen/sys/xenbus_dev.h>",
        "int main(void) {",
    ]
    for structs in STRUCTS.values():
        for struct, fields in structs.items():
            lines.append(f'printf("{struct} %zu\\n", sizeof(struct {struct}));')
            for f in fields:
                lines.append(f'printf("{struct}.{f} %zu\\n", offsetof(struct {struct}, {f}));')
    for request in REQUESTS:
        lines.append(f'printf("{request} %lu\\n", (unsigned long){request});')
    lines.append('printf("GNTCOPY %d %d\\n", GNTCOPY_source_gref, GNTCOPY_dest_gref);')
    lines.append(
        'printf("foreign %zu %zu %zu\\n", offsetof(struct gntdev_grant_copy_segment,'
        " source.foreign.ref), offsetof(struct gntdev_grant_copy_segment,"
        " source.foreign.offset), offsetof(struct gntdev_grant_copy_segment,"
        " source.foreign.domid));"
    )
    lines += ["return 0; }"]
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp) / "abi.c", Path(tmp) / "abi"
        src.write_text("\n".join(lines))
        subprocess.run(["gcc", "-o", str(exe), str(src)], check=True)
        out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    result: dict[str, int] = {}
    for line in out.splitlines():
        name, *values = line.split()
        for i, v in enumerate(values):
            result[name if i == 0 else f"{name}.{i}"] = int(v)
    return result


def test_ioctl_structures_match_the_headers() -> None:
    c = header_layout()
    for structs in STRUCTS.values():
        for struct, fields in structs.items():
            assert ffi.sizeof(f"struct {struct}") == c[struct], struct
            for f in fields:
                assert ffi.offsetof(f"struct {struct}", f) == c[f"{struct}.{f}"], (struct, f)


def test_ioctl_request_numbers_match_the_headers() -> None:
    c = header_layout()
    for request, number in REQUESTS.items():
        assert number == c[request], request
    assert (c["GNTCOPY"], c["GNTCOPY.1"]) == (GNTCOPY_SOURCE_GREF, GNTCOPY_DEST_GREF)
    seg = "struct gntdev_grant_copy_segment"
    assert (c["foreign"], c["foreign.1"], c["foreign.2"]) == tuple(
        ffi.offsetof(seg, "source", "foreign", f) for f in ("ref", "offset", "domid")
    )


OUT_OF_LINE_CHECK = """
import json, sys
sys.modules["cffi"] = None  # an image carries only _cffi_backend
sys.modules["pycparser"] = None
sys.path.insert(0, {folder!r})
import mirage_xen_linux_ffi as m
ffi = m.ffi
layout = {{}}
for struct, fields in {structs!r}.items():
    layout[struct] = ffi.sizeof("struct " + struct)
    for f in fields:
        layout[struct + "." + f] = ffi.offsetof("struct " + struct, f)
seg = "struct gntdev_grant_copy_segment"
layout["foreign"] = [ffi.offsetof(seg, "source", "foreign", f) for f in ("ref", "offset", "domid")]
layout["atomics"] = [str(ffi.typeof(ffi.dlopen("libatomic.so.1").__atomic_fetch_or_1))]
print(json.dumps(layout))
"""


def test_the_out_of_line_module_declares_the_same_layouts(tmp_path: Path) -> None:
    """What images carry instead of the C declarations (no C parsing at boot): loaded
    with only ``_cffi_backend``, it gives the headers' sizes and offsets, and the same
    function types."""
    import json
    import sys

    from mirage.xen._linux_abi import out_of_line_source

    source = out_of_line_source()
    assert b"import _cffi_backend" in source and b"import cffi" not in source
    (tmp_path / "mirage_xen_linux_ffi.py").write_bytes(source)
    structs = {s: f for group in STRUCTS.values() for s, f in group.items()}
    check = OUT_OF_LINE_CHECK.format(folder=str(tmp_path), structs=structs)
    if atomics() is None:
        check = check.replace('layout["atomics"] = ', "# ")
    out = subprocess.run(
        [sys.executable, "-I", "-c", check], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    layout = json.loads(out.stdout)
    c = header_layout()
    for struct, fields in structs.items():
        assert layout[struct] == c[struct] == ffi.sizeof(f"struct {struct}"), struct
        for f in fields:
            assert layout[f"{struct}.{f}"] == c[f"{struct}.{f}"], (struct, f)
    assert layout["foreign"] == [c["foreign"], c["foreign.1"], c["foreign.2"]]
    if atomics() is not None:
        assert layout["atomics"] == [str(ffi.typeof(atomics().__atomic_fetch_or_1))]


def test_atomic_byte_operations() -> None:
    lib = atomics()
    if lib is None:
        pytest.skip("libatomic.so.1 is not installed (Debian package libatomic1)")
    page = bytearray(16)
    page[5] = 0b1010
    ptr = ffi.cast("char *", ffi.from_buffer(page)) + 5
    assert lib.__atomic_fetch_or_1(ptr, 0b0101, SEQ_CST) == 0b1010
    assert page[5] == 0b1111
    assert lib.__atomic_fetch_and_1(ptr, 0b1100, SEQ_CST) == 0b1111
    assert page[5] == 0b1100 and page[4] == page[6] == 0


def test_without_xen_the_backend_says_why() -> None:
    why = available()
    if why is None:
        pytest.skip("this host has /dev/xen: covered by the tests below")
    assert "/dev/xen/" in why
    with pytest.raises(HypervisorError, match="/dev/xen/"):
        LinuxDomain(0)


needs_xen = pytest.mark.skipif(available() is not None, reason=f"needs a Xen host: {available()}")


@needs_xen
def test_grant_to_ourselves_and_map() -> None:
    """Share a page with our own domain, map it through gntdev, and see one memory;
    signal a port bound to ourselves (as libxenvchan's tests do in dom0)."""

    async def body() -> None:
        domid = int(os.environ.get("MIRAGE_XEN_DOMID", "0"))
        dom = LinuxDomain(domid)
        try:
            grant = dom.gnttab.share(domid, 2)
            mapping = dom.gnttab.map(domid, grant.refs)
            grant.memory[0:5] = b"hello"
            assert bytes(mapping.memory[0:5]) == b"hello"
            assert dom.gnttab.fetch_or(mapping, 4096, 3) == 0
            assert grant.memory[4096] == 3
            with pytest.raises(HypervisorError):
                dom.gnttab.map(domid, [0xFFFFFF])
            dom.gnttab.copy_to(domid, grant.refs[1], 8, b"copied")
            assert bytes(grant.memory[4096 + 8 : 4096 + 14]) == b"copied"
            assert dom.gnttab.copy_from(domid, grant.refs[0], 0, 5) == b"hello"
            port = dom.evtchn.bind_unbound_port(domid)
            other = dom.evtchn.bind_interdomain(domid, port)
            dom.evtchn.notify(other)
            await asyncio.wait_for(dom.evtchn.wait(port), 10)
            dom.evtchn.unbind(other)
            dom.evtchn.unbind(port)
            dom.gnttab.unmap(mapping)
            dom.gnttab.end_access(grant)
        finally:
            dom.close()

    run(body(), 30)


def test_xenstored_for_dom0_says_why_without_xen(tmp_path: Path) -> None:
    if available() is None:
        pytest.skip("this host has /dev/xen: the real-Xen boot test covers it")
    from mirage.xen.xenstore._daemon import main

    with pytest.raises(SystemExit) as exc:
        main(["--linux-dom0", "--socket", str(tmp_path / "xs.sock")])
    assert exc.value.code == 1
    assert not (tmp_path / "xs.sock").exists()
