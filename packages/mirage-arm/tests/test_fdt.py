"""The device tree codec: totality, round trips, QEMU's blob, and dtc as a referee."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mirage.arm import (
    DeviceTree,
    FdtError,
    FdtErrorCode,
    Node,
    pull_fdt,
    push_fdt,
    u32,
    u64,
)
from mirage.arm._fdt import Token

QEMU = shutil.which("qemu-system-aarch64")
DTC = shutil.which("dtc")


def small_tree() -> DeviceTree:
    tree = DeviceTree(reservations=[(0x1000, 0x2000)])
    tree.root.set("#address-cells", 2)
    tree.root.set("compatible", ["vendor,board", "vendor,soc"])
    chosen = tree.ensure("/chosen")
    chosen.set("bootargs", "console=ttyAMA0")
    memory = tree.ensure("/memory@40000000")
    memory.set("reg", u64(0x40000000, 0x10000000))
    memory.set("device_type", "memory")
    tree.ensure("/soc/uart@9000000").set("status", b"")
    return tree


def test_a_built_tree_round_trips_and_reads_back() -> None:
    tree = small_tree()
    blob = push_fdt(tree)
    back = pull_fdt(blob)
    assert back == tree
    assert back.reservations == [(0x1000, 0x2000)]
    assert back.root.strings("compatible") == ["vendor,board", "vendor,soc"]
    assert back.get("/chosen").string("bootargs") == "console=ttyAMA0"
    assert back.get("/memory").cells("reg") == (0, 0x40000000, 0, 0x10000000)
    assert back.root.u32("#address-cells") == 2
    assert back.get("/soc/uart@9000000").props == {"status": b""}
    assert push_fdt(back) == blob
    assert [p for p, _ in back.root.walk()] == [
        "/",
        "/chosen",
        "/memory@40000000",
        "/soc",
        "/soc/uart@9000000",
    ]


def test_lookups_and_edits_fail_with_libfdt_codes() -> None:
    tree = small_tree()
    assert tree.find("/nowhere") is None
    assert tree.find("chosen") is None
    with pytest.raises(FdtError) as info:
        tree.get("/nowhere")
    assert info.value.code == FdtErrorCode.NOTFOUND
    with pytest.raises(FdtError) as info:
        tree.root.add("chosen")
    assert info.value.code == FdtErrorCode.EXISTS
    with pytest.raises(FdtError) as info:
        tree.root.u32("compatible")
    assert info.value.code == FdtErrorCode.BADVALUE
    with pytest.raises(FdtError) as info:
        tree.get("/chosen").prop("missing")
    assert info.value.code == FdtErrorCode.NOTFOUND
    with pytest.raises(FdtError) as info:
        tree.ensure("relative")
    assert info.value.code == FdtErrorCode.BADPATH
    removed = tree.root.remove("soc")
    assert removed.name == "soc" and tree.find("/soc") is None


@pytest.mark.parametrize(
    ("blob", "code"),
    [
        (b"", FdtErrorCode.TRUNCATED),
        (b"\0" * 40, FdtErrorCode.BADMAGIC),
        (push_fdt(DeviceTree())[:-1], FdtErrorCode.TRUNCATED),
    ],
)
def test_bad_blobs_name_their_fault(blob: bytes, code: FdtErrorCode) -> None:
    with pytest.raises(FdtError) as info:
        pull_fdt(blob)
    assert info.value.code == code


def test_an_old_version_is_refused() -> None:
    blob = bytearray(push_fdt(DeviceTree()))
    blob[20:24] = u32(16)
    with pytest.raises(FdtError) as info:
        pull_fdt(bytes(blob))
    assert info.value.code == FdtErrorCode.BADVERSION


def test_nop_tokens_are_skipped() -> None:
    tree = small_tree()
    blob = bytearray(push_fdt(tree, keep_layout=False))
    # Put a NOP in front of the END token by hand: the struct grows by one word.
    off_struct, off_strings = int.from_bytes(blob[8:12], "big"), int.from_bytes(blob[12:16], "big")
    size_struct = int.from_bytes(blob[36:40], "big")
    end = off_struct + size_struct
    patched = blob[: end - 4] + u32(Token.NOP) + blob[end - 4 :]
    patched[12:16] = u32(off_strings + 4)
    patched[36:40] = u32(size_struct + 4)
    patched[4:8] = u32(len(patched))
    assert pull_fdt(bytes(patched)) == tree


names = st.text(st.sampled_from("abcdefgh,-_@0123456789#"), min_size=1, max_size=12).filter(
    lambda n: "@" not in n[:1]
)


@st.composite
def nodes(draw: st.DrawFn, depth: int = 0) -> Node:
    node = Node("")
    for name in draw(st.lists(names, max_size=4, unique=True)):
        node.props[name] = draw(st.binary(max_size=12))
    if depth < 3:
        for name in draw(st.lists(names, max_size=3, unique=True)):
            child = draw(nodes(depth + 1))
            child.name = name
            node.children.append(child)
    return node


trees = st.builds(
    DeviceTree,
    root=nodes(),
    reservations=st.lists(st.tuples(st.integers(1, 2**64 - 1), st.integers(0, 2**64 - 1))),
    boot_cpuid_phys=st.integers(0, 2**32 - 1),
)


@settings(max_examples=150)
@given(trees)
def test_round_trip(tree: DeviceTree) -> None:
    blob = push_fdt(tree)
    back = pull_fdt(blob)
    assert back == tree
    assert push_fdt(back) == blob


@settings(max_examples=300)
@given(st.binary(max_size=200))
@example(b"\xd0\x0d\xfe\xed" + b"\0" * 36)
def test_decoder_is_total(data: bytes) -> None:
    try:
        pull_fdt(data)
    except FdtError:
        pass


@settings(max_examples=300)
@given(trees, st.data())
def test_decoder_is_total_on_damaged_trees(tree: DeviceTree, data: st.DataObject) -> None:
    blob = bytearray(push_fdt(tree))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(blob) - 1))
        blob[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    try:
        back = pull_fdt(bytes(blob[:cut] if data.draw(st.booleans()) else blob))
    except FdtError:
        return
    assert pull_fdt(push_fdt(back)) == back


@pytest.fixture(scope="module")
def qemu_dtb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    if QEMU is None:
        pytest.skip("qemu-system-aarch64 is not installed (apt-get install qemu-system-arm)")
    path = tmp_path_factory.mktemp("dtb") / "virt.dtb"
    subprocess.run(
        [
            QEMU,
            "-machine",
            f"virt,virtualization=on,gic-version=3,dumpdtb={path}",
            "-cpu",
            "cortex-a57",
            "-m",
            "2048",
            "-nographic",
            "-nodefaults",
        ],
        capture_output=True,
        check=True,
    )
    return path.read_bytes()


def test_qemu_virt_blob_round_trips_byte_for_byte(qemu_dtb: bytes) -> None:
    tree = pull_fdt(qemu_dtb)
    assert push_fdt(tree) == qemu_dtb
    assert tree.root.strings("compatible") == ["linux,dummy-virt"]
    assert tree.get("/chosen").string("stdout-path") == "/pl011@9000000"
    assert tree.get("/memory").cells("reg") == (0, 0x40000000, 0, 2048 << 20)
    # Compact, it reads back as the same tree.
    assert pull_fdt(push_fdt(tree, keep_layout=False)) == tree


def _dts(blob: bytes, tmp_path: Path) -> str:
    path = tmp_path / "in.dtb"
    path.write_bytes(blob)
    return subprocess.run(
        [str(DTC), "-q", "-I", "dtb", "-O", "dts", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.mark.skipif(
    DTC is None, reason="dtc is not installed (apt-get install device-tree-compiler)"
)
def test_dtc_reads_our_blobs_as_it_reads_qemus(qemu_dtb: bytes, tmp_path: Path) -> None:
    tree = pull_fdt(qemu_dtb)
    chosen = tree.get("/chosen")
    chosen.set("bootargs", "console=hvc0")
    tree.ensure("/domU1/module@49000000").set("reg", u64(0x49000000, 0x1000))
    ours = push_fdt(tree, keep_layout=False)
    text = _dts(ours, tmp_path)
    assert 'bootargs = "console=hvc0";' in text and "module@49000000 {" in text
    # dtc's own blob of that source decodes to the tree we wrote.
    source = tmp_path / "ours.dts"
    source.write_text(text)
    theirs = subprocess.run(
        [str(DTC), "-q", "-I", "dts", "-O", "dtb", str(source)], capture_output=True, check=True
    ).stdout
    assert pull_fdt(theirs) == tree
    # And QEMU's blob, unedited, prints the same through dtc either way.
    assert _dts(push_fdt(pull_fdt(qemu_dtb), keep_layout=False), tmp_path) == _dts(
        qemu_dtb, tmp_path
    )
