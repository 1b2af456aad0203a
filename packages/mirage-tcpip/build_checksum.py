"""Build script (poetry-core ``[tool.poetry.build]``): compile the checksum accelerator.

cffi's out-of-line API mode compiles ``src/mirage/tcpip/_checksum.c`` into the
extension module ``mirage.tcpip._checksum_cffi`` and places it beside the sources,
where the wheel (or an editable install) picks it up. A failed compile is reported
and the package falls back to pure Python at import time.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
PACKAGE = HERE / "src" / "mirage" / "tcpip"


def build() -> Path | None:
    try:
        from cffi import FFI
    except ImportError:
        print("cffi is not available: the checksum stays pure Python", file=sys.stderr)
        return None
    ffi = FFI()
    ffi.cdef("uint16_t mirage_ones_sum(const uint8_t *data, size_t len);")
    ffi.set_source(
        "mirage.tcpip._checksum_cffi",
        (PACKAGE / "_checksum.c").read_text(),
        extra_compile_args=["-O2"],
    )
    with tempfile.TemporaryDirectory() as tmp:
        try:
            built = Path(ffi.compile(tmpdir=tmp))
        except Exception as exc:  # a missing compiler must not break the install
            print(f"checksum accelerator not built ({exc}): pure Python", file=sys.stderr)
            return None
        target = PACKAGE / built.name
        # Copy beside it, then rename over it: a process that has the old module
        # loaded keeps its (unlinked) file, where overwriting in place would crash it.
        partial = target.with_name(target.name + ".tmp")
        shutil.copyfile(built, partial)
        os.replace(partial, target)
        return target


if __name__ == "__main__":
    print(build())
