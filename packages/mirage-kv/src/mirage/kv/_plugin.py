"""mirage-kv's plugin: its four stores and the ``kv-ro`` key.

Declarations only: factories are import paths, so loading this module imports no
store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mirage.core import Impl, Key, Param, hookimpl

if TYPE_CHECKING:
    from mirage.core import Registry

REQUIRES = ("mirage-kv>=0.1,<1",)

IMPLS = (
    Impl(
        name="directory",
        provides="kv_rw",
        factory="mirage.kv.directory:DirectoryKv",
        params=(Param("root", "path", doc="the directory to serve, read at run time"),),
        requires=REQUIRES,
        doc="a directory of the host, read and written at run time",
    ),
    Impl(
        name="memory",
        provides="kv_rw",
        factory="mirage.kv.memory:MemoryKv",
        requires=REQUIRES,
        doc="a store in memory, empty at start",
    ),
    Impl(
        name="crunch",
        provides="kv_ro",
        factory="mirage.kv.crunch:CrunchKv",
        params=(Param("root", "path", doc="the directory of the project to embed"),),
        requires=REQUIRES,
        build="mirage.kv._crunch:build",
        doc="files of a directory, embedded into the artifact at build time",
    ),
    Impl(
        name="tar",
        provides="kv_ro",
        factory="mirage.kv.tar:TarKv",
        params=(Param("path", "path", doc="the tar archive (plain, gz, bz2 or xz)"),),
        requires=REQUIRES,
        doc="the files of a tar archive, read at start",
    ),
)

KEYS = (
    Key(
        "kv-ro",
        "str",
        None,
        "where generic_kv_ro stores take their files: 'crunch' (embedded into the"
        " artifact, the default) or 'directory' (read from the host at run time)",
        ("crunch", "directory"),
    ),
)


@hookimpl
def mirage_register_keys(registry: Registry) -> None:
    for key in KEYS:
        registry.add_key(key)


@hookimpl
def mirage_register_impls(registry: Registry) -> None:
    for impl in IMPLS:
        registry.add_impl(impl)
