"""Trees, commits and history over a :class:`Backend`: the object graph of a store.

Theory of operation: a tree is stored as Git trees, one object per directory; a
change at a path rewrites only the trees on that path (the rest is shared by id).
Empty directories are not stored, as in Git. History is the commit DAG; the lowest
common ancestors of two commits are the common ancestors that no other common
ancestor descends from; a merge with several of them first merges those into a
virtual base, as Git's recursive strategy does. Time is never read here: every
commit takes its date from an :class:`Info`.
"""

from __future__ import annotations

import contextlib
import heapq
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from ._backend import Backend
from ._errors import Conflict, DecodeError, MergeConflict, PathError
from ._merge import MergeFn, Unmergeable, conflict
from ._objects import (
    MODE_FILE,
    MODE_TREE,
    Commit,
    GitObject,
    ObjectType,
    Person,
    Tree,
    TreeEntry,
    decode_object,
    encode_object,
    hash_object,
)
from ._packbackend import PackBackend

__all__ = ["Change", "Info", "Node", "Repo", "Watch", "split_path"]

Node = Mapping[str, "bytes | Node"]
"""A tree as nested maps: names to contents (``bytes``) or subtrees."""

_CACHE_SIZE = 100_000
EMPTY_TREE = hash_object(ObjectType.TREE, b"")
_BAD_NAMES = frozenset({"", ".", "..", ".git"})


def split_path(path: str | Iterable[str]) -> tuple[str, ...]:
    """``"a/b//c/"`` (or ``["a", "b", "c"]``) as the steps ``("a", "b", "c")``."""
    steps = tuple(s for s in path.split("/") if s) if isinstance(path, str) else tuple(path)
    for s in steps:
        if s in _BAD_NAMES or "/" in s or "\0" in s or s.lower() == ".git":
            raise PathError("/".join(steps), f"{s!r} is not a valid Git tree entry name")
    return steps


@dataclass(frozen=True, slots=True)
class Info:
    """Who made a commit, when (POSIX seconds, and the time zone as ``+hhmm``), why."""

    date: int
    message: str = ""
    author: str = "irmin"
    email: str = "irmin@localhost"
    tz: str = "+0000"

    def person(self) -> Person:
        return Person(self.author, self.email, int(self.date), self.tz)


@dataclass(frozen=True, slots=True, eq=False)
class Watch:
    """A registered watch; :meth:`cancel` removes it."""

    repo: Repo
    ref: str
    callback: Callable[[bytes | None, bytes | None], None]

    def cancel(self) -> None:
        if self in self.repo._watches:
            self.repo._watches.remove(self)


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between two trees: ``old`` and ``new`` are ``(mode, id)`` or
    ``None`` (added, removed)."""

    path: str
    old: tuple[int, bytes] | None
    new: tuple[int, bytes] | None


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


class Repo:
    """The object graph of a store over ``backend``."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.algo: str = getattr(backend, "object_format", "sha1")
        """The object format of the backend's ids: ``sha1`` or ``sha256``."""
        self.empty_tree = hash_object(ObjectType.TREE, b"", self.algo)
        self._trees: dict[bytes, dict[str, TreeEntry]] = {}
        self._ordered: set[bytes] = set()  # trees written here: their entries are in order
        self._commits: dict[bytes, Commit] = {}
        self._local = threading.local()  # staging is per thread
        self._watches: list[Watch] = []
        self._seen: dict[str, bytes | None] = {}
        self._inodes = backend if isinstance(backend, PackBackend) else None

    @property
    def _staged(self) -> dict[bytes, tuple[ObjectType, bytes]] | None:
        staged: dict[bytes, tuple[ObjectType, bytes]] | None = getattr(self._local, "staged", None)
        return staged

    @contextlib.contextmanager
    def staging(self) -> Iterator[None]:
        """Hold the objects written inside the block and write them together (one
        pack on disk) when it ends without an error; reads see them meanwhile."""
        if self._staged is not None:
            yield
            return
        staged: dict[bytes, tuple[ObjectType, bytes]] = {}
        self._local.staged = staged
        try:
            yield
            if staged:
                write_hashed = getattr(self.backend, "write_hashed", None)
                if write_hashed is not None:  # ids already computed: not hashed again
                    write_hashed(staged)
                else:
                    self.backend.write_many(list(staged.values()))
        finally:
            self._local.staged = None

    def _put(self, kind: ObjectType, body: bytes) -> bytes:
        staged = self._staged
        if staged is None:
            return self.backend.write(kind, body)
        oid = hash_object(kind, body, self.algo)
        staged.setdefault(oid, (kind, body))
        return oid

    # -- watches -----------------------------------------------------------------

    def add_watch(self, ref: str, callback: Callable[[bytes | None, bytes | None], None]) -> Watch:
        watch = Watch(self, ref, callback)
        self._seen.setdefault(ref, self.backend.get_ref(ref))
        self._watches.append(watch)
        return watch

    def notify(self, ref: str, old: bytes | None, new: bytes | None) -> None:
        """Tell the watches of ``ref`` that it moved from ``old`` to ``new``."""
        self._seen[ref] = new
        for w in list(self._watches):
            if w.ref == ref:
                w.callback(old, new)

    def poll(self) -> None:
        """Look for refs moved by others since last seen, and notify their watches."""
        for ref in {w.ref for w in self._watches}:
            current = self.backend.get_ref(ref)
            old = self._seen.get(ref)
            if current != old:
                self.notify(ref, old, current)

    # -- objects ---------------------------------------------------------------

    def read_object(self, oid: bytes) -> GitObject:
        kind, body = self.backend.read(oid)
        return decode_object(kind, body, f"{kind.value} {oid.hex()}", self.algo)

    def _read_kind(self, oid: bytes, kind: ObjectType) -> bytes:
        pending = self._staged
        staged = pending.get(oid) if pending is not None else None
        actual, body = staged if staged is not None else self.backend.read(oid)
        if actual is not kind:
            raise DecodeError(f"object {oid.hex()}", f"a {actual.value}, expected a {kind.value}")
        return body

    def read_tree(self, oid: bytes) -> Tree:
        return Tree(tuple(self.entries(oid).values()))

    def entries(self, oid: bytes) -> Mapping[str, TreeEntry]:
        """The entries of a tree by name, in Git order (cached: do not mutate)."""
        cached = self._trees.get(oid)
        if cached is not None:
            return cached
        if oid == self.empty_tree:
            return {}
        tree = decode_object(
            ObjectType.TREE, self._read_kind(oid, ObjectType.TREE), oid.hex(), self.algo
        )
        assert isinstance(tree, Tree)
        return self._remember_tree(oid, {e.name: e for e in tree.entries})

    def _remember_tree(self, oid: bytes, entries: dict[str, TreeEntry]) -> dict[str, TreeEntry]:
        if len(self._trees) > _CACHE_SIZE:
            self._trees.clear()
            self._ordered.clear()
        self._trees[oid] = entries
        return entries

    def read_commit(self, oid: bytes) -> Commit:
        cached = self._commits.get(oid)
        if cached is not None:
            return cached
        commit = decode_object(
            ObjectType.COMMIT,
            self._read_kind(oid, ObjectType.COMMIT),
            f"commit {oid.hex()}",
            self.algo,
        )
        assert isinstance(commit, Commit)
        if len(self._commits) > _CACHE_SIZE:
            self._commits.clear()
        self._commits[oid] = commit
        return commit

    def read_blob(self, oid: bytes) -> bytes:
        return self._read_kind(oid, ObjectType.BLOB)

    def write(self, obj: GitObject) -> bytes:
        kind, body = encode_object(obj)
        return self._put(kind, body)

    def write_tree(self, entries: list[TreeEntry], in_order: bool = False) -> bytes:
        """Write a tree of ``entries`` (sorted into Git's order unless ``in_order``
        says they are)."""
        tree = Tree(tuple(entries)) if in_order else Tree.of(entries)
        oid = self.write(tree)
        self._ordered.add(oid)
        self._remember_tree(oid, {e.name: e for e in tree.entries})
        return oid

    def write_blob(self, data: bytes) -> bytes:
        return self._put(ObjectType.BLOB, data)

    # -- trees -----------------------------------------------------------------

    def find_entry(self, tree: bytes, path: tuple[str, ...]) -> TreeEntry | None:
        """The entry at ``path`` (the root is a tree entry named ``""``)."""
        entry = TreeEntry(MODE_TREE, "", tree)
        for step in path:
            if not entry.is_tree:
                return None
            found = self._child(entry.oid, step)
            if found is None:
                return None
            entry = found
        return entry

    def _child(self, tree: bytes, name: str) -> TreeEntry | None:
        cached = self._trees.get(tree)
        if cached is None and self._inodes is not None and self._inodes.is_inode(tree):
            got = self._inodes.inode_entry(tree, name)  # one chunk, not the whole tree
            return None if got is None else TreeEntry(int(got[0], 8), name, got[1])
        return (cached if cached is not None else self.entries(tree)).get(name)

    def update_tree(self, tree: bytes, path: tuple[str, ...], entry: TreeEntry | None) -> bytes:
        """``tree`` with ``entry`` at ``path`` (``None`` removes it). Missing parents
        are made; a parent that is not a tree raises :class:`PathError`; directories
        left empty are dropped."""
        if not path:
            if entry is None:
                return self.empty_tree
            if not entry.is_tree:
                raise PathError("", "the root must be a tree")
            return entry.oid
        return self._update(tree, path, 0, entry) or self.empty_tree

    def _update(
        self, tree: bytes | None, path: tuple[str, ...], i: int, entry: TreeEntry | None
    ) -> bytes | None:
        if tree is not None and self._inodes is not None and self._inodes.is_inode(tree):
            return self._update_inode(tree, path, i, entry)
        entries = dict(self.entries(tree)) if tree is not None else {}
        name = path[i]
        old = entries.get(name)
        new: TreeEntry | None
        if i == len(path) - 1:
            new = None if entry is None else TreeEntry(entry.mode, name, entry.oid)
        else:
            if old is not None and not old.is_tree:
                raise PathError("/".join(path[: i + 1]), "is contents, not a tree")
            sub = self._update(old.oid if old else None, path, i + 1, entry)
            new = None if sub is None else TreeEntry(MODE_TREE, name, sub)
        if new is None:
            entries.pop(name, None)
        else:
            entries[name] = new
        if not entries:
            return None
        # Replacing an entry by one of the same kind keeps Git's order (the common
        # single-key commit): the tree is not sorted again.
        # Only trees this repository sorted count (a foreign tree may be out of order).
        in_order = (tree is None or tree in self._ordered) and (
            new is None or (old is not None and old.is_tree == new.is_tree)
        )
        return self.write_tree(list(entries.values()), in_order)

    def _update_inode(
        self, tree: bytes, path: tuple[str, ...], i: int, entry: TreeEntry | None
    ) -> bytes | None:
        """:meth:`_update` of a large tree of the pack backend: its chunks are changed
        in place, the tree is not read whole."""
        assert self._inodes is not None
        name = path[i]
        change: tuple[bytes, bytes] | None
        if i == len(path) - 1:
            change = None if entry is None else (b"%o" % entry.mode, entry.oid)
        else:
            child = self._child(tree, name)
            if child is not None and not child.is_tree:
                raise PathError("/".join(path[: i + 1]), "is contents, not a tree")
            sub = self._update(child.oid if child else None, path, i + 1, entry)
            change = None if sub is None else (b"%o" % MODE_TREE, sub)
        new = self._inodes.inode_update(tree, name, change)
        return None if new == self.empty_tree else new

    def apply(
        self,
        tree: bytes,
        changes: Iterable[tuple[tuple[str, ...], TreeEntry | None]],
        objects: Iterable[tuple[ObjectType, bytes]] = (),
    ) -> bytes:
        """``tree`` with many entries set (or removed, ``None``) at once; only the
        final trees are written, with ``objects`` (the new blobs), in one batch."""
        root: dict[str, TreeEntry | dict] = dict(self.entries(tree))  # type: ignore[type-arg]
        for steps, entry in changes:
            if not steps:
                root = dict(self.entries(entry.oid)) if entry is not None else {}
                continue
            node = root
            for i, step in enumerate(steps[:-1]):
                child = node.get(step)
                if child is None:
                    child = node[step] = {}
                elif isinstance(child, TreeEntry):
                    if not child.is_tree:
                        raise PathError("/".join(steps[: i + 1]), "is contents, not a tree")
                    child = node[step] = dict(self.entries(child.oid))
                node = child
            if entry is None:
                node.pop(steps[-1], None)
            else:
                node[steps[-1]] = TreeEntry(entry.mode, steps[-1], entry.oid)
        out = list(objects)

        def build(node: dict[str, TreeEntry | dict]) -> bytes | None:  # type: ignore[type-arg]
            entries = []
            for name, value in node.items():
                if isinstance(value, dict):
                    sub = build(value)
                    if sub is not None:
                        entries.append(TreeEntry(MODE_TREE, name, sub))
                else:
                    entries.append(value)
            if not entries:
                return None
            obj = Tree.of(entries)
            kind, body = encode_object(obj)
            oid = hash_object(kind, body, self.algo)
            out.append((kind, body))
            self._remember_tree(oid, {e.name: e for e in obj.entries})
            return oid

        result = build(root) or self.empty_tree
        if self._staged is not None:
            for kind, body in out:
                self._put(kind, body)
        else:
            self.backend.write_many(out)
        return result

    def tree_of_node(self, node: Node) -> bytes:
        """Write nested maps as trees (in bulk: a pack on disk); the root tree's id."""
        objects: list[tuple[ObjectType, bytes]] = []

        def build(n: Node, prefix: str) -> bytes | None:
            entries = []
            for name, value in n.items():
                split_path([name])
                if isinstance(value, bytes | bytearray):
                    kind, body = ObjectType.BLOB, bytes(value)
                    objects.append((kind, body))
                    entries.append(TreeEntry(MODE_FILE, name, hash_object(kind, body, self.algo)))
                else:
                    sub = build(value, _join(prefix, name))
                    if sub is not None:
                        entries.append(TreeEntry(MODE_TREE, name, sub))
            if not entries and prefix:
                return None
            kind, body = encode_object(Tree.of(entries))
            objects.append((kind, body))
            return hash_object(kind, body, self.algo)

        root = build(node, "")
        assert root is not None
        if self._staged is not None:
            for kind, body in objects:
                self._put(kind, body)
        else:
            self.backend.write_many(objects)
        return root

    def node_of_tree(self, tree: bytes) -> dict[str, bytes | dict]:  # type: ignore[type-arg]
        """A tree as nested dicts of contents."""
        out: dict[str, bytes | dict] = {}  # type: ignore[type-arg]
        for e in self.read_tree(tree).entries:
            out[e.name] = self.node_of_tree(e.oid) if e.is_tree else self.read_blob(e.oid)
        return out

    def walk(self, tree: bytes, prefix: str = "") -> Iterator[tuple[str, TreeEntry]]:
        """Every non-tree entry below ``tree``, with its full path, in tree order."""
        for e in self.read_tree(tree).entries:
            if e.is_tree:
                yield from self.walk(e.oid, _join(prefix, e.name))
            else:
                yield _join(prefix, e.name), e

    def diff(self, old: bytes, new: bytes, prefix: str = "") -> list[Change]:
        """The changes from tree ``old`` to tree ``new``, by path, contents only."""
        if old == new:
            return []
        a = self.entries(old)
        b = self.entries(new)
        out: list[Change] = []
        for name in sorted(a.keys() | b.keys()):
            x, y = a.get(name), b.get(name)
            path = _join(prefix, name)
            if x is not None and y is not None and (x.mode, x.oid) == (y.mode, y.oid):
                continue
            x_tree = x.oid if x is not None and x.is_tree else self.empty_tree
            y_tree = y.oid if y is not None and y.is_tree else self.empty_tree
            if x_tree != self.empty_tree or y_tree != self.empty_tree:
                out += self.diff(x_tree, y_tree, path)
            xv = (x.mode, x.oid) if x is not None and not x.is_tree else None
            yv = (y.mode, y.oid) if y is not None and not y.is_tree else None
            if xv != yv:
                out.append(Change(path, xv, yv))
        return sorted(out, key=lambda c: c.path)

    # -- commits and history -----------------------------------------------------

    def commit(self, tree: bytes, parents: Iterable[bytes], info: Info) -> bytes:
        person = info.person()
        if tree == self.empty_tree:
            self._put(ObjectType.TREE, b"")
        message = (
            info.message if info.message.endswith("\n") or not info.message else info.message + "\n"
        )
        commit = Commit(tree, tuple(parents), person, person, message)
        oid = self.write(commit)
        if len(self._commits) > _CACHE_SIZE:
            self._commits.clear()
        self._commits[oid] = commit  # the next write on the branch starts from it
        return oid

    def history(self, heads: Iterable[bytes], depth: int | None = None) -> list[bytes]:
        """Commits reachable from ``heads``, newest committer date first, each once;
        ``depth`` bounds the distance from the heads."""
        out: list[bytes] = []
        seen: set[bytes] = set()
        queue: list[tuple[int, int, bytes, int]] = []
        counter = 0
        for h in heads:
            if h not in seen:
                seen.add(h)
                queue.append((-self.read_commit(h).committer.time, counter, h, 0))
                counter += 1
        heapq.heapify(queue)
        while queue:
            _, _, oid, d = heapq.heappop(queue)
            out.append(oid)
            if depth is not None and d >= depth:
                continue
            for p in self.read_commit(oid).parents:
                if p not in seen:
                    seen.add(p)
                    counter += 1
                    heapq.heappush(queue, (-self.read_commit(p).committer.time, counter, p, d + 1))
        return out

    def ancestors(self, oid: bytes) -> set[bytes]:
        """``oid`` and every commit it descends from."""
        seen = {oid}
        stack = [oid]
        while stack:
            for p in self.read_commit(stack.pop()).parents:
                if p not in seen:
                    seen.add(p)
                    stack.append(p)
        return seen

    def is_ancestor(self, a: bytes, b: bytes) -> bool:
        """Whether ``a`` is ``b`` or one of its ancestors."""
        return a in self.ancestors(b)

    def lcas(self, a: bytes, b: bytes) -> list[bytes]:
        """The lowest common ancestors of two commits (sorted by id).

        As ``git merge-base``: walk down from both, newest committer date first,
        painting each commit with the side(s) it is reachable from; a commit reached
        from both is a candidate and makes its ancestors stale; stop when only stale
        commits are left; drop candidates that are ancestors of other candidates.
        """
        if a == b:
            return [a]
        one, two, stale = 1, 2, 4
        flags = {a: one, b: two}
        queue = [
            (-self.read_commit(a).committer.time, 0, a),
            (-self.read_commit(b).committer.time, 1, b),
        ]
        counter = 2
        found: list[bytes] = []
        while any(not flags[c] & stale for _, _, c in queue):
            _, _, c = heapq.heappop(queue)
            f = flags[c]
            if f & (one | two) == one | two and not f & stale:
                found.append(c)
                f |= stale
                flags[c] = f
            for p in self.read_commit(c).parents:
                old = flags.get(p, 0)
                new = old | (f & (one | two | stale))
                if new != old:
                    flags[p] = new
                    counter += 1
                    heapq.heappush(queue, (-self.read_commit(p).committer.time, counter, p))
        if len(found) > 1:
            found = [c for c in found if not any(c != d and self.is_ancestor(c, d) for d in found)]
        return sorted(set(found))

    # -- merges ----------------------------------------------------------------

    def merge_trees(
        self, base: bytes | None, ours: bytes, theirs: bytes, merge: MergeFn = conflict
    ) -> bytes:
        """The three-way merge of trees (``base`` ``None``: empty);
        :class:`MergeConflict` lists every conflicting path."""
        conflicts: list[Conflict] = []
        result = self._merge(base, ours, theirs, merge=merge, prefix="", conflicts=conflicts)
        if conflicts:
            raise MergeConflict(tuple(conflicts))
        return result or self.empty_tree

    def _merge(
        self,
        base: bytes | None,
        ours: bytes | None,
        theirs: bytes | None,
        *,
        merge: MergeFn,
        prefix: str,
        conflicts: list[Conflict],
    ) -> bytes | None:
        if ours == theirs:
            return ours
        if base == ours:
            return theirs
        if base == theirs:
            return ours
        b = self.entries(base) if base else {}
        o = self.entries(ours) if ours else {}
        t = self.entries(theirs) if theirs else {}
        entries = []
        for name in sorted(b.keys() | o.keys() | t.keys()):
            e = self._merge_entry(
                b.get(name),
                o.get(name),
                t.get(name),
                merge=merge,
                path=_join(prefix, name),
                conflicts=conflicts,
            )
            if e is not None:
                entries.append(TreeEntry(e[0], name, e[1]))
        if not entries:
            return None
        return self.write_tree(entries)

    def _merge_entry(
        self,
        b: TreeEntry | None,
        o: TreeEntry | None,
        t: TreeEntry | None,
        *,
        merge: MergeFn,
        path: str,
        conflicts: list[Conflict],
    ) -> tuple[int, bytes] | None:
        bv = (b.mode, b.oid) if b else None
        ov = (o.mode, o.oid) if o else None
        tv = (t.mode, t.oid) if t else None
        if ov == tv:
            return ov
        if bv == ov:
            return tv
        if bv == tv:
            return ov
        o_blob = o is not None and not o.is_tree
        t_blob = t is not None and not t.is_tree
        if not o_blob and not t_blob:  # trees or nothing: merge what is inside
            sub = self._merge(
                b.oid if b is not None and b.is_tree else None,
                o.oid if o is not None else None,
                t.oid if t is not None else None,
                merge=merge,
                prefix=path,
                conflicts=conflicts,
            )
            return (MODE_TREE, sub) if sub is not None else None
        if (o is not None and o.is_tree) or (t is not None and t.is_tree):
            reason = "a tree on one side, contents on the other"
            conflicts.append(Conflict(path, reason, bv, ov, tv))
            return None
        if b is not None and b.is_tree:  # contents replaced a tree: no common base
            b, bv = None, None
            if ov is None or tv is None:
                return ov or tv
        if ov and tv and ov[0] != tv[0] and bv and bv[0] not in (ov[0], tv[0]):
            conflicts.append(Conflict(path, "modes changed on both sides", bv, ov, tv))
            return None
        try:
            value = merge(
                path,
                self.read_blob(b.oid) if b else None,
                self.read_blob(o.oid) if o else None,
                self.read_blob(t.oid) if t else None,
            )
        except Unmergeable as e:
            conflicts.append(Conflict(path, str(e), bv, ov, tv))
            return None
        if value is None:
            return None
        if ov and tv:
            mode = tv[0] if bv and ov[0] == bv[0] else ov[0]
        else:
            mode = ov[0] if ov else tv[0] if tv else MODE_FILE
        return mode, self.write_blob(value)

    def merge_commits(
        self, ours: bytes, theirs: bytes, info: Info, merge: MergeFn = conflict
    ) -> bytes:
        """Merge commit ``theirs`` into ``ours``: ``theirs`` if it descends from
        ``ours`` (fast-forward), ``ours`` if ``theirs`` is already merged, else a new
        merge commit with both as parents."""
        if self.is_ancestor(theirs, ours):
            return ours
        if self.is_ancestor(ours, theirs):
            return theirs
        base = self._virtual_base(self.lcas(ours, theirs), info, merge)
        tree = self.merge_trees(
            base, self.read_commit(ours).tree, self.read_commit(theirs).tree, merge
        )
        return self.commit(tree, (ours, theirs), info)

    def _virtual_base(self, lcas: list[bytes], info: Info, merge: MergeFn) -> bytes | None:
        """The base tree: the one LCA's tree, or the merge of several LCAs (merged
        pairwise into virtual commits, recursively), or ``None`` for none."""
        if not lcas:
            return None
        current = lcas[0]
        for other in lcas[1:]:
            sub = self._virtual_base(self.lcas(current, other), info, merge)
            tree = self.merge_trees(
                sub, self.read_commit(current).tree, self.read_commit(other).tree, merge
            )
            current = self.commit(tree, (current, other), Info(info.date, "virtual merge base"))
        return self.read_commit(current).tree
