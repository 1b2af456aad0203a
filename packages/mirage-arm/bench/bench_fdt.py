"""Device tree decoding: our pure-Python reader beside libfdt (through pylibfdt).

Both read QEMU's ``virt`` tree and visit every node and property value. The peer runs
in the system interpreter (Debian's python3-libfdt); each side times itself in
process. Needs qemu-system-aarch64 and python3-libfdt.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mirage.arm import pull_fdt, push_fdt

ROUNDS = 200

PEER = """
import sys, time, libfdt
data = open(sys.argv[1], "rb").read()
rounds = int(sys.argv[2])
QUIET = [libfdt.FDT_ERR_NOTFOUND, libfdt.FDT_ERR_BADOFFSET]

def visit():
    fdt = libfdt.Fdt(data)
    node, depth, count = 0, 0, 0
    while node >= 0:
        prop = fdt.first_property_offset(node, [libfdt.FDT_ERR_NOTFOUND])
        while prop >= 0:
            value = fdt.get_property_by_offset(prop)
            count += len(bytes(value)) + len(value.name)
            prop = fdt.next_property_offset(prop, [libfdt.FDT_ERR_NOTFOUND])
        node, depth = fdt.next_node(node, depth, QUIET)
        if depth < 0:
            break
    return count

visit()
start = time.perf_counter()
for _ in range(rounds):
    visit()
print((time.perf_counter() - start) / rounds)
"""


def ours(data: bytes) -> int:
    tree = pull_fdt(data)
    return sum(len(v) + len(k) for _, node in tree.root.walk() for k, v in node.props.items())


def main() -> None:
    qemu = shutil.which("qemu-system-aarch64")
    if qemu is None:
        sys.exit("bench-arm needs qemu-system-aarch64 (apt-get install qemu-system-arm)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "virt.dtb"
        machine = f"virt,virtualization=on,gic-version=3,dumpdtb={path}"
        subprocess.run(
            [qemu, "-machine", machine, "-nographic", "-nodefaults"],
            check=True,
            capture_output=True,
        )
        data = path.read_bytes()
        ours(data)
        start = time.perf_counter()
        for _ in range(ROUNDS):
            ours(data)
        mine = (time.perf_counter() - start) / ROUNDS
        start = time.perf_counter()
        for _ in range(ROUNDS):
            push_fdt(pull_fdt(data))
        round_trip = (time.perf_counter() - start) / ROUNDS
        tree = pull_fdt(data)
        nodes = sum(1 for _ in tree.root.walk())
        print(f"QEMU virt tree: {len(data)} bytes with padding, {nodes} nodes")
        print(f"ours   decode+visit: {mine * 1e6:9.1f} us")
        print(f"ours   decode+encode: {round_trip * 1e6:8.1f} us")
        python = "/usr/bin/python3"
        peer = subprocess.run(
            [python, "-c", PEER, str(path), str(ROUNDS)],
            capture_output=True,
            text=True,
            check=False,
        )
        if peer.returncode != 0:
            print(
                "libfdt: not measured (apt-get install python3-libfdt):", peer.stderr.strip()[-200:]
            )
            return
        theirs = float(peer.stdout)
        print(f"libfdt decode+visit: {theirs * 1e6:9.1f} us (pylibfdt)")
        print(f"ratio ours/libfdt: {mine / theirs:.2f}")


if __name__ == "__main__":
    main()
