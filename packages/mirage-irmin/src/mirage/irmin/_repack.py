"""Repacking a Git repository: every object into one pack, with deltas for history.

Theory of operation: as ``git repack -a -d``. The objects reachable from every ref
are ordered so that the versions of one path follow each other (commits newest
first, then trees and blobs grouped by the path they were found at, newest version
first), so that each can be stored as a delta against its neighbour; delta chains
are cut at :data:`MAX_DEPTH` as Git's default is. Objects no ref reaches are kept
(appended whole): repacking never loses an object. The new pack and its index are
complete on disk before the packs and loose objects it replaces are removed (index
first, then pack), so readers, ``git`` included, never miss an object; a crash in
between leaves objects twice, which is harmless.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

from ._git import GitBackend
from ._objects import Commit, ObjectType, Tag, hash_object
from ._pack import write_pack
from ._repo import Repo

__all__ = ["RepackStats", "repack"]

MAX_DEPTH = 50


@dataclass(frozen=True, slots=True)
class RepackStats:
    """What a repack did: objects written, the new pack's size, packs and loose objects replaced."""

    objects: int
    pack_bytes: int
    replaced_packs: int
    replaced_loose: int


def _loose_ids(backend: GitBackend) -> Iterator[bytes]:
    objects = backend.git_dir / "objects"
    for sub in objects.iterdir():
        if len(sub.name) != 2 or not sub.is_dir():
            continue
        for f in sub.iterdir():
            if len(f.name) in (38, 62) and not f.name.startswith("."):
                with contextlib.suppress(ValueError):
                    yield bytes.fromhex(sub.name + f.name)


def _ordered(backend: GitBackend, all_ids: set[bytes]) -> list[bytes]:
    """Reachable ids, versions of a path together; then the rest."""
    repo = Repo(backend)
    heads = list(backend.list_refs("refs/").values())
    with contextlib.suppress(Exception):
        head = backend.get_ref("HEAD")
        if head is not None:
            heads.append(head)
    commits: list[bytes] = []
    tags: list[bytes] = []
    seen: set[bytes] = set()
    stack = list(heads)
    while stack:
        oid = stack.pop()
        if oid in seen:
            continue
        seen.add(oid)
        obj = repo.read_object(oid)
        if isinstance(obj, Tag):
            tags.append(oid)
            stack.append(obj.object)
        elif isinstance(obj, Commit):
            commits.append(oid)
            stack.extend(obj.parents)
    commits = repo.history(commits) if commits else []
    by_path: dict[str, list[bytes]] = {}
    for c in commits:  # newest first
        todo = [("", repo.read_commit(c).tree)]
        while todo:
            path, tree = todo.pop()
            if tree in seen:
                continue
            seen.add(tree)
            by_path.setdefault(path + "/", []).append(tree)
            for e in repo.read_tree(tree).entries:
                child = f"{path}/{e.name}"
                if e.is_tree:
                    todo.append((child, e.oid))
                elif e.mode != 0o160000 and e.oid not in seen:
                    seen.add(e.oid)
                    by_path.setdefault(child, []).append(e.oid)
    trees = [o for p in sorted(by_path) if p.endswith("/") for o in by_path[p]]
    blobs = [o for p in sorted(by_path) if not p.endswith("/") for o in by_path[p]]
    ordered = commits + tags + trees + blobs
    placed = set(ordered)
    return ordered + sorted(all_ids - placed)


def repack(backend: GitBackend) -> RepackStats:
    """Write every object of ``backend`` into one pack with deltas; remove the packs
    and loose objects it replaces."""
    backend.refresh()
    packs = dict(backend.packs())
    loose = set(_loose_ids(backend))
    all_ids = set(loose)
    for existing in packs.values():
        all_ids.update(existing.ids())
    objects: list[tuple[ObjectType, bytes]] = []
    for oid in _ordered(backend, all_ids):
        kind, body = backend.read(oid)
        objects.append((kind, body))
    algo = backend.object_format
    pack, entries = write_pack(objects, level=6, deltas=True, max_depth=MAX_DEPTH, algo=algo)
    name = backend.pack_name(pack)
    backend.add_pack(pack, entries)
    assert {oid for oid, _, _ in entries} == {hash_object(k, b, algo) for k, b in objects}
    pack_dir = backend.git_dir / "objects" / "pack"
    replaced = 0
    for old in packs:
        if old == name:
            continue
        for suffix in (".idx", ".pack"):
            with contextlib.suppress(FileNotFoundError):
                (pack_dir / f"{old}{suffix}").unlink()
        backend.forget_pack(old)
        replaced += 1
    for oid in loose:
        h = oid.hex()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(backend.git_dir / "objects" / h[:2] / h[2:])
    return RepackStats(len(entries), len(pack), replaced, len(loose))
