"""The pack backend: an append-only file of records, directories as inodes.

Theory of operation: every record (contents, directory inode, commit; see
:mod:`mirage.irmin._inode`) is appended once to ``store.pack`` as a frame: kind
byte, key, body length, body. The index (key to offset) is rebuilt by one scan of
the file when it is opened; a torn frame at the end (a writer killed mid-append) is
cut off. Records written by a commit are buffered and appended before the branch
moves, so a branch never names a record that is not complete in the file. Branches
are files under ``branches/`` updated by compare-and-set (``<name>.lock`` taken with
``O_EXCL``, renamed over). Each record read is hashed against its key.

Unlike :class:`GitBackend`, this format is not Git's: it is for stores with very
large directories, where a Git tree object (one per directory) would be rewritten
whole for every change.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import heapq
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from ._errors import CorruptObject, DecodeError, ObjectMissing, PathError, RefUpdateRejected
from ._inode import (
    FANOUT,
    KEY_LEN,
    MAX_DEPTH,
    CommitRecord,
    Entry,
    Record,
    TreeInode,
    Values,
    decode_record,
    encode_record,
    key_of,
    name_hash,
    slot,
)
from ._repo import _BAD_NAMES, Info, split_path

__all__ = ["PackRepo", "PackStore"]

_MAGIC = b"IRMINPK1"
_CACHE = 200_000
Path_ = str | Iterable[str]
List = list  # the name ``list`` is a method of PackStore


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


class PackRepo:
    """Records in ``<root>/store.pack`` (created if missing) and branches."""

    def __init__(self, root: str | os.PathLike[str], fsync: bool = False) -> None:
        self.root = Path(root)
        self.fsync = fsync
        (self.root / "branches").mkdir(parents=True, exist_ok=True)
        self._path = self.root / "store.pack"
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        self._index: dict[bytes, tuple[int, int, bytes]] = {}  # key -> body offset, len, kind
        self._buffer = bytearray()
        self._cache: dict[bytes, Record] = {}
        self._lock = threading.RLock()
        self.appended = 0  # records appended since opened (new ones only)
        self._end = self._load()

    def close(self) -> None:
        self.flush()
        os.close(self._fd)

    def _load(self) -> int:
        size = os.fstat(self._fd).st_size
        if size == 0:
            os.pwrite(self._fd, _MAGIC, 0)
            return len(_MAGIC)
        data = os.pread(self._fd, size, 0)
        if data[:8] != _MAGIC:
            raise DecodeError(str(self._path), "not a pack store (bad magic)")
        pos = len(_MAGIC)
        while pos < size:
            start = pos
            kind = data[pos : pos + 1]
            key = data[pos + 1 : pos + 1 + KEY_LEN]
            pos += 1 + KEY_LEN
            n = shift = 0
            while pos < size and shift < 64:
                b = data[pos]
                pos += 1
                n |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            else:
                pos = size + 1
            if len(key) != KEY_LEN or pos + n > size:  # torn at the end: cut it off
                os.ftruncate(self._fd, start)
                return start
            self._index[key] = (pos, n, kind)
            pos += n
        return pos

    # -- records -----------------------------------------------------------------

    def add(self, record: Record) -> bytes:
        if isinstance(record, bytes):
            return self.add_contents(record)
        kind, body = encode_record(record)
        key = key_of(kind, body)
        with self._lock:
            self._append(kind, key, body)
            self._remember(key, record)
        return key

    def add_contents(self, body: bytes) -> bytes:
        h = hashlib.sha1(b"c")
        h.update(body)
        key = h.digest()
        with self._lock:
            self._append(b"c", key, body)
        return key

    def add_contents_many(self, bodies: Iterable[bytes]) -> list[bytes]:
        """:meth:`add_contents` for many (one lock, no call per record)."""
        sha1 = hashlib.sha1
        index = self._index
        buffer = self._buffer
        keys = []
        with self._lock:
            base = self._end
            for body in bodies:
                h = sha1(b"c")
                h.update(body)
                key = h.digest()
                keys.append(key)
                if key in index:
                    continue
                n = len(body)
                buffer += b"c" + key + (bytes((n,)) if n < 0x80 else _varint(n))
                index[key] = (base + len(buffer), n, b"c")
                buffer += body
                self.appended += 1
        return keys

    def _append(self, kind: bytes, key: bytes, body: bytes) -> None:
        if key in self._index:
            return
        n = len(body)
        frame = kind + key + (bytes((n,)) if n < 0x80 else _varint(n))
        buffer = self._buffer
        offset = self._end + len(buffer) + len(frame)
        buffer += frame
        buffer += body
        self._index[key] = (offset, n, kind)
        self.appended += 1

    def _remember(self, key: bytes, record: Record) -> None:
        if len(self._cache) > _CACHE:
            self._cache.clear()
        self._cache[key] = record

    def flush(self) -> None:
        """Append the buffered records to the file (before a branch names them)."""
        with self._lock:
            if not self._buffer:
                return
            data = bytes(self._buffer)
            view = memoryview(data)
            at = self._end
            while view:
                n = os.pwrite(self._fd, view, at)
                view = view[n:]
                at += n
            if self.fsync:
                os.fsync(self._fd)
            self._end += len(data)
            self._buffer.clear()

    def contains(self, key: bytes) -> bool:
        return key in self._index

    def read(self, key: bytes) -> Record:
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        with self._lock:
            found = self._index.get(key)
            if found is None:
                raise ObjectMissing(key)
            offset, n, kind = found
            if offset >= self._end:
                rel = offset - self._end
                body = bytes(self._buffer[rel : rel + n])
            else:
                body = os.pread(self._fd, n, offset)
        actual = key_of(kind, body)
        if actual != key:
            raise CorruptObject(key, actual, str(self._path))
        record = decode_record(kind, body, f"record {key.hex()}")
        if not isinstance(record, bytes):
            self._remember(key, record)
        return record

    def contents(self, key: bytes) -> bytes:
        record = self.read(key)
        if not isinstance(record, bytes):
            raise DecodeError(f"record {key.hex()}", "not contents")
        return record

    def _node(self, key: bytes) -> Values | TreeInode:
        record = self.read(key)
        if not isinstance(record, Values | TreeInode):
            raise DecodeError(f"record {key.hex()}", "not a directory")
        return record

    def commit_record(self, key: bytes) -> CommitRecord:
        record = self.read(key)
        if not isinstance(record, CommitRecord):
            raise DecodeError(f"record {key.hex()}", "not a commit")
        return record

    # -- directories (hash tries) ------------------------------------------------------

    def build(self, entries: Iterable[Entry]) -> bytes | None:
        """A directory of ``entries`` (names unique), built bottom-up; ``None`` if empty."""
        return self._build([(name_hash(e.name), e) for e in entries], 0)

    def _build(self, hashed: list[tuple[int, Entry]], depth: int) -> bytes | None:
        hashed.sort()  # by hash: each slot's names are a contiguous run, at every depth
        hashes = [h for h, _ in hashed]
        return self._build_sorted(hashed, hashes, 0, len(hashed), depth)

    def _build_sorted(
        self, hashed: list[tuple[int, Entry]], hashes: list[int], lo: int, hi: int, depth: int
    ) -> bytes | None:
        if lo == hi:
            return None
        if hi - lo <= FANOUT or depth >= MAX_DEPTH:
            return self.add(Values(tuple(sorted(e for _, e in hashed[lo:hi]))))
        width = 55 - 5 * depth
        prefix = hashes[lo] >> (width + 5) << (width + 5)
        slots: list[bytes | None] = []
        start = lo
        for i in range(FANOUT):
            end = bisect.bisect_left(hashes, prefix + ((i + 1) << width), start, hi)
            slots.append(self._build_sorted(hashed, hashes, start, end, depth + 1))
            start = end
        return self.add(TreeInode(depth, hi - lo, tuple(slots)))

    def entries(self, key: bytes | None) -> list[Entry]:
        """Every entry of a directory, sorted by name."""
        if key is None:
            return []
        out: list[Entry] = []
        self._collect(key, out)
        out.sort()  # by name: names are unique in a directory
        return out

    def _collect(self, key: bytes, out: list[Entry]) -> None:
        node = self._node(key)
        if isinstance(node, Values):
            out += node.entries
            return
        for child in node.slots:
            if child is not None:
                self._collect(child, out)

    def length(self, key: bytes | None) -> int:
        if key is None:
            return 0
        node = self._node(key)
        return len(node.entries) if isinstance(node, Values) else node.length

    def find(self, key: bytes | None, name: bytes) -> Entry | None:
        h = name_hash(name)
        depth = 0
        while key is not None:
            node = self._node(key)
            if isinstance(node, Values):
                for e in node.entries:
                    if e.name == name:
                        return e
                return None
            key = node.slots[slot(h, depth)]
            depth += 1
        return None

    def upsert(self, key: bytes | None, entry: Entry) -> bytes:
        return self._upsert(key, 0, name_hash(entry.name), entry)[0]

    def _upsert(self, key: bytes | None, depth: int, h: int, entry: Entry) -> tuple[bytes, bool]:
        """The new directory and whether the name is new in it."""
        if key is None:
            return self.add(Values((entry,))), True
        node = self._node(key)
        if isinstance(node, Values):
            rest = [e for e in node.entries if e.name != entry.name]
            added = len(rest) == len(node.entries)
            new = self._build([(name_hash(e.name), e) for e in [*rest, entry]], depth)
            assert new is not None
            return new, added
        i = slot(h, depth)
        child, added = self._upsert(node.slots[i], depth + 1, h, entry)
        slots = (*node.slots[:i], child, *node.slots[i + 1 :])
        return self.add(TreeInode(depth, node.length + added, slots)), added

    def remove(self, key: bytes | None, name: bytes) -> bytes | None:
        if key is None:
            return None
        return self._remove(key, 0, name_hash(name), name)[0]

    def _remove(self, key: bytes, depth: int, h: int, name: bytes) -> tuple[bytes | None, bool]:
        node = self._node(key)
        if isinstance(node, Values):
            rest = tuple(e for e in node.entries if e.name != name)
            if len(rest) == len(node.entries):
                return key, False
            return (self.add(Values(rest)) if rest else None), True
        i = slot(h, depth)
        child = node.slots[i]
        if child is None:
            return key, False
        new_child, removed = self._remove(child, depth + 1, h, name)
        if not removed:
            return key, False
        slots = (*node.slots[:i], new_child, *node.slots[i + 1 :])
        if node.length - 1 <= FANOUT:  # small enough again: fold into values
            out: list[Entry] = []
            for s in slots:
                if s is not None:
                    self._collect(s, out)
            return self.add(Values(tuple(sorted(out)))), True
        return self.add(TreeInode(depth, node.length - 1, slots)), True

    # -- paths -------------------------------------------------------------------

    def find_path(self, root: bytes | None, steps: tuple[str, ...]) -> Entry | None:
        entry = Entry(b"", True, root) if root is not None else None
        for step in steps:
            if entry is None or not entry.node:
                return None
            entry = self.find(entry.key, step.encode())
        return entry

    def update_path(
        self, root: bytes | None, steps: tuple[str, ...], entry: Entry | None
    ) -> bytes | None:
        """``root`` with ``entry`` at ``steps`` (``None`` removes); empty directories
        disappear; a step through contents raises :class:`PathError`."""
        if not steps:
            return entry.key if entry is not None and entry.node else None
        name = steps[0].encode()
        if len(steps) == 1:
            if entry is None:
                return self.remove(root, name)
            return self.upsert(root, Entry(name, entry.node, entry.key))
        child = self.find(root, name) if root is not None else None
        if child is not None and not child.node:
            raise PathError(steps[0], "is contents, not a directory")
        sub = self.update_path(child.key if child else None, steps[1:], entry)
        if sub is None:
            return self.remove(root, name)
        return self.upsert(root, Entry(name, True, sub))

    # -- commits and branches ------------------------------------------------------------

    def commit(self, root: bytes | None, parents: Iterable[bytes], info: Info) -> bytes:
        tree = root if root is not None else self.add(Values(()))
        return self.add(CommitRecord(tree, tuple(parents), int(info.date), info.message))

    def _branch_path(self, branch: str) -> Path:
        (step,) = split_path([branch])
        return self.root / "branches" / step

    def get_branch(self, branch: str) -> bytes | None:
        try:
            text = self._branch_path(branch).read_bytes().strip()
        except FileNotFoundError:
            return None
        try:
            key = bytes.fromhex(text.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            raise DecodeError(f"branch {branch}", f"bad head {text[:50]!r}") from None
        if len(key) != KEY_LEN:
            raise DecodeError(f"branch {branch}", f"bad head {text[:50]!r}")
        return key

    def branches(self) -> dict[str, bytes]:
        out = {}
        for p in sorted((self.root / "branches").iterdir()):
            if not p.name.endswith(".lock"):
                head = self.get_branch(p.name)
                if head is not None:
                    out[p.name] = head
        return out

    def update_branch(self, branch: str, expected: bytes | None, new: bytes) -> None:
        """Compare-and-set the branch (the records are flushed first)."""
        self.flush()
        path = self._branch_path(branch)
        lock = path.with_name(path.name + ".lock")
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        done = False
        try:
            actual = self.get_branch(branch)
            if actual != expected:
                raise RefUpdateRejected(branch, expected, actual)
            os.write(fd, new.hex().encode() + b"\n")
            if self.fsync:
                os.fsync(fd)
            os.close(fd)
            fd = -1
            os.replace(lock, path)
            done = True
        finally:
            if fd >= 0:
                os.close(fd)
            if not done:
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()


class PackStore:
    """A branch of a :class:`PackRepo`: values at paths, every write a commit."""

    def __init__(self, repo: PackRepo, branch: str = "main", retries: int = 64) -> None:
        self.repo = repo
        self.branch = branch
        self.retries = retries

    def head(self) -> bytes | None:
        return self.repo.get_branch(self.branch)

    def root(self) -> bytes | None:
        head = self.head()
        if head is None:
            return None
        root = self.repo.commit_record(head).root
        return root if self.repo.length(root) else None

    def find(self, path: Path_) -> bytes | None:
        e = self.repo.find_path(self.root(), split_path(path))
        return None if e is None or e.node else self.repo.contents(e.key)

    def get(self, path: Path_) -> bytes:
        value = self.find(path)
        if value is None:
            raise PathError("/".join(split_path(path)), "no contents")
        return value

    def list(self, path: Path_ = ()) -> List[tuple[str, str]]:
        e = self.repo.find_path(self.root(), split_path(path))
        if e is None or not e.node:
            return []
        return [
            (x.name.decode(), "node" if x.node else "contents") for x in self.repo.entries(e.key)
        ]

    def length(self, path: Path_ = ()) -> int:
        """The number of entries of the directory at ``path``."""
        e = self.repo.find_path(self.root(), split_path(path))
        return self.repo.length(e.key) if e is not None and e.node else 0

    def batch(self, changes: Mapping[str, bytes | None], info: Info) -> bytes:
        """Sets (``bytes``) and removals (``None``) in one commit."""
        items = [(split_path(p), v) for p, v in changes.items()]
        return self._update(lambda root: self._apply(root, items), info)

    def set(self, path: Path_, value: bytes, info: Info) -> bytes:
        return self.batch({"/".join(split_path(path)): value}, info)

    def remove(self, path: Path_, info: Info) -> bytes:
        steps = split_path(path)
        return self._update(lambda root: self.repo.update_path(root, steps, None), info)

    def set_directory(self, path: Path_, values: Mapping[str, bytes], info: Info) -> bytes:
        """Replace the directory at ``path`` by ``values`` (names to contents), built in
        bulk: the way to write a directory of a million entries."""
        steps = split_path(path)
        for n in values:
            if n in _BAD_NAMES or "/" in n or "\0" in n or n.lower() == ".git":
                split_path([n])  # raises the PathError naming it
        keys = self.repo.add_contents_many(bytes(v) for v in values.values())
        entries = [Entry(n.encode(), False, k) for n, k in zip(values, keys, strict=True)]

        def change(root: bytes | None) -> bytes | None:
            d = self.repo.build(entries)
            return self.repo.update_path(root, steps, Entry(b"", True, d) if d else None)

        return self._update(change, info)

    def _apply(
        self, root: bytes | None, items: List[tuple[tuple[str, ...], bytes | None]]
    ) -> bytes | None:
        for steps, value in items:
            if not steps:
                raise PathError("", "the root is a directory")
            entry = None if value is None else Entry(b"", False, self.repo.add(bytes(value)))
            root = self.repo.update_path(root, steps, entry)
        return root

    def _update(self, change: Callable[[bytes | None], bytes | None], info: Info) -> bytes:
        for attempt in range(self.retries):
            head = self.head()
            root = self.repo.commit_record(head).root if head is not None else None
            if root is not None and not self.repo.length(root):
                root = None
            commit = self.repo.commit(change(root), [head] if head else [], info)
            try:
                self.repo.update_branch(self.branch, head, commit)
            except RefUpdateRejected:
                continue
            except FileExistsError:  # another writer holds the branch's lock
                time.sleep(0.0005 * (attempt + 1))
                continue
            return commit
        raise RefUpdateRejected(self.branch, None, self.head())

    def history(self, depth: int | None = None) -> List[bytes]:
        """Commits reachable from the head, newest date first, each once; ``depth``
        bounds the distance from the head."""
        head = self.head()
        if head is None:
            return []
        out: List[bytes] = []
        seen = {head}
        queue = [(-self.repo.commit_record(head).date, 0, head, 0)]
        counter = 1
        while queue:
            _, _, key, d = heapq.heappop(queue)
            out.append(key)
            if depth is not None and d >= depth:
                continue
            for p in self.repo.commit_record(key).parents:
                if p not in seen:
                    seen.add(p)
                    counter += 1
                    date = self.repo.commit_record(p).date
                    heapq.heappush(queue, (-date, counter, p, d + 1))
        return out

    def walk(self, path: Path_ = ()) -> Iterator[tuple[str, bytes]]:
        """Every contents below ``path`` with its full path, depth first, by name."""
        e = self.repo.find_path(self.root(), split_path(path))
        if e is not None and e.node:
            yield from self._walk("/".join(split_path(path)), e.key)

    def _walk(self, where: str, key: bytes) -> Iterator[tuple[str, bytes]]:
        for x in self.repo.entries(key):
            p = f"{where}/{x.name.decode()}" if where else x.name.decode()
            if x.node:
                yield from self._walk(p, x.key)
            else:
                yield p, self.repo.contents(x.key)
