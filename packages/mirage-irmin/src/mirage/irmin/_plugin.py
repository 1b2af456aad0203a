"""mirage-irmin's plugin: the ``irmin`` ``kv_rw`` device.

Declarations only: the factory is an import path, so loading this module imports no
store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mirage.core import Impl, Param, hookimpl

if TYPE_CHECKING:
    from mirage.core import Registry

REQUIRES = ("mirage-irmin>=0.1,<1",)

IMPLS = (
    Impl(
        name="irmin",
        provides="kv_rw",
        factory="mirage.irmin.kv:IrminKv",
        params=(
            Param(
                "root",
                "path",
                None,
                "the Git repository (created bare if missing); none: in memory",
            ),
            Param("branch", "str", "main", "the branch the store reads and commits to"),
            Param(
                "backend",
                "str",
                "git",
                "'git' (a Git repository) or 'pack' (the pack backend, for huge directories)",
            ),
        ),
        requires=REQUIRES,
        doc="a versioned store: every write is a Git commit on a branch",
    ),
)


@hookimpl
def mirage_register_impls(registry: Registry) -> None:
    for impl in IMPLS:
        registry.add_impl(impl)
