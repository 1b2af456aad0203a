"""The Irmin-like store: values at paths on a branch, every write a commit.

Theory of operation: a :class:`Store` is a branch of a :class:`Repo`. Reads look at
the tree of the branch's head commit. A write reads the head, computes the new tree,
commits it with the head as parent and moves the branch by compare-and-set; if
another writer moved the branch first, the write is applied again on the new head
(up to ``retries`` times), so no concurrent update is lost. A write that changes
nothing makes no commit. Dates come from the caller's :class:`Info`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Literal

from ._errors import IrminError, PathError, RefUpdateRejected
from ._git import RefLocked
from ._merge import MergeFn, conflict
from ._objects import MODE_FILE, MODE_TREE, ObjectType, Tag, TreeEntry, hash_object
from ._refs import check_ref_name
from ._repo import Info, Node, Repo, Watch, split_path

__all__ = ["Kind", "Store", "TooManyRetries"]

Kind = Literal["contents", "node"]
Path = str | Iterable[str]
List = list  # the name ``list`` is a method of Store


class TooManyRetries(IrminError):
    """A write lost the compare-and-set on its branch ``retries`` times in a row."""


class Store:
    """The branch ``branch`` of ``repo`` (created by the first write)."""

    def __init__(self, repo: Repo, branch: str = "main", retries: int = 64) -> None:
        self.repo = repo
        self.branch = branch
        self.ref = check_ref_name(f"refs/heads/{branch}")
        self.retries = retries

    # -- reads -------------------------------------------------------------------

    def head(self) -> bytes | None:
        """The branch's head commit, ``None`` before the first commit."""
        return self.repo.backend.get_ref(self.ref)

    def tree(self) -> bytes:
        """The root tree at the head."""
        head = self.head()
        return self.repo.read_commit(head).tree if head else self.repo.empty_tree

    def _entry(self, path: Path) -> TreeEntry | None:
        return self.repo.find_entry(self.tree(), split_path(path))

    def kind(self, path: Path) -> Kind | None:
        e = self._entry(path)
        return None if e is None else "node" if e.is_tree else "contents"

    def mem(self, path: Path) -> bool:
        return self.kind(path) == "contents"

    def mem_tree(self, path: Path) -> bool:
        return self.kind(path) == "node"

    def find(self, path: Path) -> bytes | None:
        e = self._entry(path)
        return None if e is None or e.is_tree else self.repo.read_blob(e.oid)

    def get(self, path: Path) -> bytes:
        value = self.find(path)
        if value is None:
            raise PathError("/".join(split_path(path)), "no contents")
        return value

    def list(self, path: Path = ()) -> list[tuple[str, Kind]]:
        """The entries of the tree at ``path`` (``[]`` if there is none)."""
        e = self._entry(path)
        if e is None or not e.is_tree:
            return []
        return [
            (x.name, "node" if x.is_tree else "contents")
            for x in sorted(self.repo.entries(e.oid).values(), key=lambda x: x.name)
        ]

    def find_tree(self, path: Path = ()) -> dict[str, bytes | dict] | None:  # type: ignore[type-arg]
        e = self._entry(path)
        return None if e is None or not e.is_tree else self.repo.node_of_tree(e.oid)

    def history(self, depth: int | None = None) -> List[bytes]:
        head = self.head()
        return self.repo.history([head], depth) if head else []

    def last_modified(self, path: Path, n: int = 1, depth: int | None = None) -> List[bytes]:
        """The (at most ``n``) latest commits that changed what ``path`` holds."""
        steps = split_path(path)
        out: List[bytes] = []
        for oid in self.history(depth):
            commit = self.repo.read_commit(oid)
            mine = self.repo.find_entry(commit.tree, steps)
            parents = [self.repo.read_commit(p).tree for p in commit.parents] or [
                self.repo.empty_tree
            ]
            if all(self.repo.find_entry(t, steps) != mine for t in parents):
                out.append(oid)
                if len(out) >= n:
                    break
        return out

    # -- writes ------------------------------------------------------------------

    def update(
        self,
        change: Callable[[bytes], bytes],
        info: Info,
        parents: Iterable[bytes] = (),
        allow_empty: bool = False,
    ) -> bytes | None:
        """Commit ``change(root tree) -> root tree`` on the branch, retrying on
        concurrent updates; the new head (the old one if nothing changed)."""
        for attempt in range(self.retries):
            head = self.head()
            old_tree = self.repo.read_commit(head).tree if head else self.repo.empty_tree
            with self.repo.staging():  # the objects are on disk before the ref moves
                new_tree = change(old_tree)
                if new_tree == old_tree and not allow_empty and head is not None:
                    return head
                commit = self.repo.commit(new_tree, ([head] if head else []) + list(parents), info)
            try:
                self.repo.backend.update_ref(self.ref, head, commit)
            except RefUpdateRejected:
                continue
            except RefLocked:
                time.sleep(0.0005 * (attempt + 1))
                continue
            self.repo.notify(self.ref, head, commit)
            return commit
        raise TooManyRetries(f"{self.ref}: {self.retries} concurrent updates in a row")

    def set(self, path: Path, value: bytes, info: Info) -> bytes | None:
        """Write contents at ``path``; a commit."""
        steps = split_path(path)
        if not steps:
            raise PathError("", "the root is a tree")

        def change(tree: bytes) -> bytes:
            blob = self.repo.write_blob(bytes(value))
            return self.repo.update_tree(tree, steps, TreeEntry(MODE_FILE, steps[-1], blob))

        return self.update(change, info)

    def set_tree(self, path: Path, node: Node, info: Info) -> bytes | None:
        """Replace the tree at ``path`` with nested maps (empty: remove it)."""
        steps = split_path(path)
        oid = self.repo.tree_of_node(node)
        entry = None if oid == self.repo.empty_tree else TreeEntry(MODE_TREE, "", oid)
        return self.update(lambda tree: self.repo.update_tree(tree, steps, entry), info)

    def remove(self, path: Path, info: Info) -> bytes | None:
        steps = split_path(path)
        return self.update(lambda tree: self.repo.update_tree(tree, steps, None), info)

    def batch(self, changes: Mapping[str, bytes | None], info: Info) -> bytes | None:
        """Several sets (``bytes``) and removals (``None``) in one commit."""
        items = []
        blobs = []
        for p, v in changes.items():
            steps = split_path(p)
            if not steps:
                raise PathError("", "the root is a tree")
            entry = None
            if v is not None:
                blobs.append((ObjectType.BLOB, bytes(v)))
                oid = hash_object(ObjectType.BLOB, bytes(v), self.repo.algo)
                entry = TreeEntry(MODE_FILE, steps[-1], oid)
            items.append((steps, entry))
        return self.update(lambda tree: self.repo.apply(tree, items, blobs), info)

    def with_tree(
        self,
        path: Path,
        fn: Callable[[dict[str, bytes | dict] | None], Node | None],  # type: ignore[type-arg]
        info: Info,
    ) -> bytes | None:
        """Replace the tree at ``path`` by ``fn(current)`` (nested dicts, ``None`` when
        there is no tree there; ``None`` or ``{}`` removes it) in one commit.

        ``fn`` runs on a snapshot; if another writer moved the branch meanwhile, it
        runs again on the new head, so a read-modify-write never loses an update.
        """
        steps = split_path(path)

        def change(tree: bytes) -> bytes:
            e = self.repo.find_entry(tree, steps)
            current = self.repo.node_of_tree(e.oid) if e is not None and e.is_tree else None
            new = fn(current)
            if not new:
                return self.repo.update_tree(tree, steps, None) if e is not None else tree
            oid = self.repo.tree_of_node(new)
            return self.repo.update_tree(tree, steps, TreeEntry(MODE_TREE, "", oid))

        return self.update(change, info)

    def test_and_set(self, path: Path, test: bytes | None, value: bytes | None, info: Info) -> bool:
        """Set (or remove, ``None``) contents only if they are ``test`` now; whether it did."""
        steps = split_path(path)
        done = False

        def change(tree: bytes) -> bytes:
            nonlocal done
            e = self.repo.find_entry(tree, steps)
            current = None if e is None or e.is_tree else self.repo.read_blob(e.oid)
            done = current == test and not (e is not None and e.is_tree)
            if not done:
                return tree
            entry = (
                None
                if value is None
                else TreeEntry(MODE_FILE, steps[-1], self.repo.write_blob(value))
            )
            return self.repo.update_tree(tree, steps, entry)

        self.update(change, info)
        return done

    # -- watches -----------------------------------------------------------------

    def watch(self, callback: Callable[[bytes | None, bytes | None], None]) -> Watch:
        """Call ``callback(old_head, new_head)`` whenever the branch moves: at once for
        writes through this repository object, and at :meth:`Repo.poll` for writes
        by others (another process, ``git``)."""
        return self.repo.add_watch(self.ref, callback)

    def watch_key(
        self, path: Path, callback: Callable[[bytes | None, bytes | None], None]
    ) -> Watch:
        """Call ``callback(old_id, new_id)`` (the entry's object ids, ``None`` where
        absent) whenever what ``path`` holds changes."""
        steps = split_path(path)

        def on_head(old: bytes | None, new: bytes | None) -> None:
            before = self._entry_at(old, steps)
            after = self._entry_at(new, steps)
            if before != after:
                callback(before, after)

        return self.watch(on_head)

    def _entry_at(self, commit: bytes | None, steps: tuple[str, ...]) -> bytes | None:
        if commit is None:
            return None
        e = self.repo.find_entry(self.repo.read_commit(commit).tree, steps)
        return None if e is None else e.oid

    # -- branches ----------------------------------------------------------------

    def merge_with_branch(self, other: str, info: Info, merge: MergeFn = conflict) -> bytes | None:
        """Merge branch ``other`` into this one (:class:`MergeConflict` on conflicts)."""
        theirs = self.repo.backend.get_ref(check_ref_name(f"refs/heads/{other}"))
        if theirs is None:
            raise PathError(other, "no such branch")
        return self.merge_with_commit(theirs, info, merge)

    def merge_with_commit(
        self, theirs: bytes, info: Info, merge: MergeFn = conflict
    ) -> bytes | None:
        for _ in range(self.retries):
            head = self.head()
            new = theirs if head is None else self.repo.merge_commits(head, theirs, info, merge)
            if new == head:
                return head
            try:
                self.repo.backend.update_ref(self.ref, head, new)
            except (RefUpdateRejected, RefLocked):
                continue
            return new
        raise TooManyRetries(f"{self.ref}: {self.retries} concurrent updates in a row")

    def tag(self, name: str, info: Info, annotated: bool = True) -> bytes:
        """Tag the head as ``refs/tags/<name>`` (an annotated tag object with the
        ``info`` message and tagger, or a lightweight tag); the ref's new value.
        :class:`RefUpdateRejected` if the tag exists."""
        head = self.head()
        if head is None:
            raise PathError("", "no commit to tag")
        ref = check_ref_name(f"refs/tags/{name}")
        target = head
        if annotated:
            message = info.message if info.message.endswith("\n") else info.message + "\n"
            target = self.repo.write(Tag(head, ObjectType.COMMIT, name, info.person(), message))
        self.repo.backend.update_ref(ref, None, target)
        return target

    def clone(self, branch: str) -> Store:
        """A new branch ``branch`` at this one's head."""
        other = Store(self.repo, branch, self.retries)
        head = self.head()
        if head is not None:
            self.repo.backend.update_ref(other.ref, None, head)
        return other
