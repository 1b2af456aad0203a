"""Moving history between backends: fetch, push, clone, and packs of history.

Theory of operation: what is missing on the receiving side is found by walking from
the commits to send and stopping at every object the receiver already holds (a
commit it holds comes with its whole history, as in Git). The missing objects travel
as one pack; the receiver then moves its reference by compare-and-set. A push that
is not a fast-forward is refused unless forced.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from ._backend import Backend
from ._errors import IrminError
from ._git import GitBackend
from ._objects import Blob, ObjectType, Tag, Tree, hash_object
from ._pack import write_pack
from ._packbackend import PackBackend
from ._repo import Repo

__all__ = [
    "NotFastForward",
    "clone",
    "fetch",
    "missing_objects",
    "pack_for",
    "push",
    "thin_pack_for",
]


class NotFastForward(IrminError):
    """A push whose new head does not descend from the receiver's head."""


def missing_objects(
    src: Backend, heads: Iterable[bytes], has: Backend | set[bytes]
) -> list[tuple[ObjectType, bytes]]:
    """The objects reachable from ``heads`` in ``src`` that ``has`` lacks, bases first
    (blobs and trees before the commits that name them)."""
    repo = Repo(src)
    held = has.__contains__ if isinstance(has, set) else has.contains
    out: list[tuple[ObjectType, bytes]] = []
    seen: set[bytes] = set()

    def add_tree(oid: bytes) -> None:
        if oid in seen or held(oid):
            return
        seen.add(oid)
        kind, body = src.read(oid)
        for e in repo.read_tree(oid).entries:
            if e.is_tree:
                add_tree(e.oid)
            elif e.mode != 0o160000 and e.oid not in seen and not held(e.oid):
                seen.add(e.oid)
                out.append(src.read(e.oid))
        out.append((kind, body))

    commits: list[tuple[ObjectType, bytes]] = []
    stack = list(heads)
    while stack:
        oid = stack.pop()
        if oid in seen or held(oid):
            continue
        seen.add(oid)
        kind, body = src.read(oid)
        obj = repo.read_object(oid)
        if isinstance(obj, Tag):
            stack.append(obj.object)
            commits.append((kind, body))
            continue
        if isinstance(obj, Tree):
            seen.discard(oid)
            add_tree(oid)
            continue
        if isinstance(obj, Blob):
            out.append((kind, body))
            continue
        commit = repo.read_commit(oid)
        add_tree(commit.tree)
        commits.append((kind, body))
        stack.extend(commit.parents)
    return out + commits[::-1]


def pack_for(
    src: Backend, heads: Iterable[bytes], has: Backend | set[bytes] | None = None
) -> bytes:
    """A pack (as ``git index-pack`` reads) of what ``has`` lacks to hold ``heads``."""
    objects = missing_objects(src, heads, set() if has is None else has)
    pack, _ = write_pack(objects, deltas=True, algo=getattr(src, "object_format", "sha1"))
    return pack


def _paths(repo: Repo, tree: bytes) -> dict[str, bytes]:
    """Every path below ``tree`` (directories end with ``/``) and its object."""
    out: dict[str, bytes] = {"/": tree}
    stack = [("", tree)]
    while stack:
        prefix, oid = stack.pop()
        for e in repo.read_tree(oid).entries:
            path = f"{prefix}/{e.name}"
            if e.is_tree:
                out[path + "/"] = e.oid
                stack.append((path, e.oid))
            elif e.mode != 0o160000:
                out[path] = e.oid
    return out


def thin_pack_for(src: Backend, heads: Iterable[bytes], tips: Iterable[bytes]) -> bytes:
    """A thin pack of what a receiver holding the commits ``tips`` (and their
    history) lacks to hold ``heads``: objects at a path the tips also have are sent
    as ``REF_DELTA`` against the tip's version, which is not in the pack (the
    receiver completes it, as ``git index-pack --fix-thin`` does)."""
    repo = Repo(src)
    held: set[bytes] = set()
    known: dict[str, bytes] = {}
    for tip in tips:
        if not src.contains(tip):
            continue
        held.add(tip)
        for path, oid in _paths(repo, repo.read_commit(tip).tree).items():
            known.setdefault(path, oid)
    held.update(known.values())
    objects = missing_objects(src, heads, held)
    wanted = {hash_object(kind, body, repo.algo) for kind, body in objects}
    bases: dict[bytes, tuple[bytes, bytes]] = {}
    for head in heads:
        commit = repo.read_commit(head) if src.contains(head) else None
        if commit is None:
            continue
        for path, oid in _paths(repo, commit.tree).items():
            base = known.get(path)
            if oid in wanted and base is not None and base != oid and oid not in bases:
                bases[oid] = (base, src.read(base)[1])
    pack, _ = write_pack(
        objects, deltas=True, algo=getattr(src, "object_format", "sha1"), thin_bases=bases
    )
    return pack


def same_format(src: Backend, dst: Backend) -> None:
    """Refuse to copy objects between repositories of different object formats."""
    a = getattr(src, "object_format", "sha1")
    b = getattr(dst, "object_format", "sha1")
    if a != b:
        raise IrminError(f"cannot copy objects from a {a} repository to a {b} one")


def fetch(src: Backend, dst: Backend, refs: dict[str, str] | None = None) -> dict[str, bytes]:
    """Copy ``refs`` (source name to destination name; default every branch to
    ``refs/remotes/origin/<branch>``) with their history; returns the new values."""
    if refs is None:
        refs = {
            name: "refs/remotes/origin/" + name.removeprefix("refs/heads/")
            for name in src.list_refs("refs/heads/")
        }
    heads = {}
    for s, d in refs.items():
        oid = src.get_ref(s)
        if oid is None:
            raise IrminError(f"the source has no ref {s!r}")
        heads[d] = oid
    same_format(src, dst)
    dst.write_many(missing_objects(src, heads.values(), dst))
    for d, oid in heads.items():
        old = dst.get_ref(d)
        if old != oid:
            dst.update_ref(d, old, oid)
    return heads


def push(
    src: Backend, dst: Backend, branch: str, remote_branch: str | None = None, force: bool = False
) -> bytes:
    """Send ``refs/heads/<branch>`` to ``dst`` (as ``remote_branch``): a fast-forward
    unless ``force``; the pushed head."""
    name = f"refs/heads/{branch}"
    target = f"refs/heads/{remote_branch or branch}"
    new = src.get_ref(name)
    if new is None:
        raise IrminError(f"no branch {branch!r} to push")
    old = dst.get_ref(target)
    if old is not None and old != new and not force:
        repo = Repo(src)
        if not src.contains(old) or not repo.is_ancestor(old, new):
            raise NotFastForward(f"{target}: {new.hex()} does not descend from {old.hex()}")
    same_format(src, dst)
    dst.write_many(missing_objects(src, [new], dst))
    if old != new:
        dst.update_ref(target, old, new)
    return new


def clone(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], bare: bool = True, pack: bool = False
) -> GitBackend | PackBackend:
    """A new repository at ``dst`` with every branch and tag of the repository at
    ``src`` (a Git repository or a pack backend), and the same ``HEAD``; ``pack``:
    ``dst`` is a :class:`PackBackend`, else a Git repository. Objects are copied as
    they are, so the ids (of trees too) are the same in both."""
    source: GitBackend | PackBackend
    source = PackBackend(src) if PackBackend.is_pack(src) else GitBackend.open(src)
    target: GitBackend | PackBackend
    if pack:
        target = PackBackend(dst, object_format=source.object_format)
    else:
        target = GitBackend.init(dst, bare=bare, object_format=source.object_format)
    refs = {n: n for n in source.list_refs("refs/heads/")}
    refs.update({n: n for n in source.list_refs("refs/tags/")})
    fetch(source, target, refs)
    target.set_head(source.head())
    return target
