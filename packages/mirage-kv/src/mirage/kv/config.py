"""Configuration helpers for ``config.py``.

``generic_kv_ro("htdocs")`` is a read-only store of the project's ``htdocs``
directory: ``--kv-ro crunch`` embeds it into the artifact, ``--kv-ro directory`` reads
it from the host at run time. Unset, the unix target reads the directory (as
MirageOS's ``direct_kv_ro`` does) and every other target embeds it::

    from mirage.core.dsl import job, register
    from mirage.kv.config import generic_kv_ro

    register("www", job("unikernel:start", htdocs=generic_kv_ro("htdocs")))
"""

from __future__ import annotations

from mirage.core.dsl import Key, KeyRef, MatchNode, if_impl, impl, key, match_impl

__all__ = ["generic_kv_ro"]


def generic_kv_ro(
    root: str, *, choice: Key | KeyRef | None = None, default: str | None = None
) -> MatchNode:
    """A ``kv_ro`` device over the directory ``root``: ``crunch`` or ``directory`` as
    the key ``choice`` (by default ``--kv-ro``) says; when it is unset, ``default``
    if given, else ``directory`` on the unix target and ``crunch`` elsewhere."""
    crunch = impl("crunch", root=root, dist="mirage-kv")
    directory = impl("directory", root=root, dist="mirage-kv")
    cases = {"crunch": crunch, "directory": directory}
    if default is not None and default not in cases:
        raise ValueError(f"generic_kv_ro: default must be 'crunch' or 'directory', not {default!r}")
    unset = (
        cases[default]
        if default is not None
        else if_impl(key("target").eq("unix"), directory, crunch)
    )
    return match_impl(choice if choice is not None else key("kv-ro"), cases, default=unset)
