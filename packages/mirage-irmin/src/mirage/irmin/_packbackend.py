"""The pack backend of :class:`Store`: Git objects in one append-only file, an index
that persists, large trees split into inodes.

Theory of operation: ``objects.pack`` is a magic string and frames (kind byte, key,
body length as a varint, body). Blobs, commits, tags and small trees are framed as
they are, under their Git id. A tree of more than :data:`SPLIT` entries is framed
as an inode: its entries, in Git's order, are cut into chunks after each entry
whose name hashes to a boundary (one in :data:`CHUNK`; so the chunks depend only
on the entries near them), each chunk a frame of its own keyed by the hash of its
body, and the tree's frame, under its Git id, lists the chunks with their first
names and a checksum. The Git body is the chunks joined. One entry is found by
reading one chunk (:meth:`PackBackend.inode_entry`), and a change to one entry of a
huge directory (:meth:`PackBackend.inode_update`) appends a chunk or two and the
inode, not the whole tree (its id is hashed over the chunks); every id is the one
Git gives the same tree: export to a Git repository copies objects as they
are (``fetch``/``push``/``clone`` of :mod:`mirage.irmin._sync`).

The index persists in two files: ``objects.idx``, rows (key, offset, length, kind)
sorted by key, looked up by bisection in a memory map, covering the pack up to an
offset written in its header; and ``objects.log``, the rows of the frames appended
since, in file order, read into a dictionary on open. When the log grows past an
eighth of the table (and 4,096 rows), both are merged into a new ``objects.idx``
(written aside, renamed over). Opening reads the header and the log, then scans
only the frames after the last row logged (a writer killed between appending frames
and logging them); a torn frame at the end is cut off. So opening a store of a
million objects reads a few kilobytes.

Appends take an exclusive ``flock`` on the pack and first index any frames other
processes appended; a lookup that misses does the same, so several processes share
a store. References are files under ``refs/`` updated by compare-and-set
(``<ref>.lock`` taken with ``O_EXCL``, written, renamed over), after the objects
they name are in the pack: a writer killed at any point leaves every reference
naming a complete commit. Every object read is hashed against its id.
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import hashlib
import mmap
import os
import struct
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from ._errors import CorruptObject, DecodeError, ObjectMissing, RefError, RefUpdateRejected
from ._git import RefLocked
from ._objects import ObjectType, hash_object
from ._refs import check_ref_name

__all__ = ["CHUNK", "SPLIT", "PackBackend"]

_MAGIC = b"IRMINOB1"
_IDX_MAGIC = b"IRMINIX1"
_MARK = "irmin-pack"
SPLIT = 256
"""Trees of more entries than this are stored as inodes."""
CHUNK = 1024
"""An inode's chunks hold this many entries on average."""
_KINDS = {
    b"b": ObjectType.BLOB,
    b"t": ObjectType.TREE,
    b"c": ObjectType.COMMIT,
    b"g": ObjectType.TAG,
}
_CODES = {v: k for k, v in _KINDS.items()}
_INODE = b"T"
_SHARD = b"S"
_ROW = struct.Struct(">QIc")  # offset, length, kind (after the key)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


class PackBackend:
    """A :class:`Backend` in the directory ``root`` (see the module)."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        object_format: str = "sha1",
        fsync: bool = False,
        head: str = "refs/heads/main",
    ) -> None:
        self.root = Path(root)
        self.fsync = fsync
        self.root.mkdir(parents=True, exist_ok=True)
        mark = self.root / _MARK
        if mark.exists():
            object_format = mark.read_text().strip() or "sha1"
        else:
            mark.write_text(object_format + "\n")
        if object_format not in ("sha1", "sha256"):
            raise DecodeError(str(mark), f"unknown object format {object_format!r}")
        self.object_format = object_format
        self._keylen = 20 if object_format == "sha1" else 32
        self._rowlen = self._keylen + _ROW.size
        (self.root / "refs" / "heads").mkdir(parents=True, exist_ok=True)
        if not (self.root / "HEAD").exists():
            (self.root / "HEAD").write_text(f"ref: {check_ref_name(head)}\n")
        self._lock = threading.RLock()
        self._pack_path = self.root / "objects.pack"
        self._idx_path = self.root / "objects.idx"
        self._log_path = self.root / "objects.log"
        self._fd = os.open(self._pack_path, os.O_RDWR | os.O_CREAT, 0o644)
        self._log = os.open(self._log_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        self._recent: dict[bytes, tuple[int, int, bytes]] = {}
        self._chunks: dict[bytes, list[tuple[bytes, bytes]]] = {}
        self._inodes: dict[bytes, tuple[int, list[tuple[bytes, bytes, int]], list[bytes]]] = {}
        self._table: mmap.mmap | None = None
        self._table_rows = 0
        self._covered = len(_MAGIC)
        with self._flock():
            if os.fstat(self._fd).st_size == 0:
                os.pwrite(self._fd, _MAGIC, 0)
            if os.pread(self._fd, 8, 0) != _MAGIC:
                raise DecodeError(str(self._pack_path), "not a pack backend (bad magic)")
            self._open_table()
            self._end = self._read_log()
            self._catch_up()

    @staticmethod
    def is_pack(root: str | os.PathLike[str]) -> bool:
        """Whether ``root`` holds a pack backend."""
        return (Path(root) / _MARK).is_file()

    def close(self) -> None:
        with self._lock:
            if self._table is not None:
                self._table.close()
                self._table = None
            os.close(self._fd)
            os.close(self._log)

    # -- the index -------------------------------------------------------------------

    @contextlib.contextmanager
    def _flock(self) -> Iterator[None]:
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _open_table(self) -> None:
        if self._table is not None:
            self._table.close()
            self._table = None
        self._table_rows = 0
        self._covered = len(_MAGIC)
        try:
            with open(self._idx_path, "rb") as f:
                head = f.read(24)
                if len(head) < 24 or head[:8] != _IDX_MAGIC:
                    raise DecodeError(str(self._idx_path), "not an index (bad header)")
                covered, rows = struct.unpack(">QQ", head[8:])
                if rows:
                    table = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                    if len(table) != 24 + rows * self._rowlen:
                        table.close()
                        raise DecodeError(str(self._idx_path), "truncated index")
                    self._table = table
                self._table_rows = rows
                self._covered = covered
        except FileNotFoundError:
            pass

    def _read_log(self) -> int:
        """Load the log's rows (cutting a torn one); the end of the last frame logged."""
        size = os.fstat(self._log).st_size
        data = os.pread(self._log, size, 0)
        pack_size = os.fstat(self._fd).st_size
        k = self._keylen
        end = self._covered
        valid = 0
        self._recent.clear()
        for at in range(0, size - self._rowlen + 1, self._rowlen):
            key = data[at : at + k]
            offset, length, kind = _ROW.unpack_from(data, at + k)
            if offset + length > pack_size:
                break
            if offset + length > end:
                self._recent[key] = (offset, length, kind)
                end = offset + length
            valid = at + self._rowlen
        if valid != size:
            os.ftruncate(self._log, valid)
        return end

    def _catch_up(self) -> None:
        """Index the frames after ``self._end`` (appended by others, or not logged
        before a crash); cut a torn frame at the end. Call under :meth:`_flock`."""
        size = os.fstat(self._fd).st_size
        if size <= self._end:
            return
        data = os.pread(self._fd, size - self._end, self._end)
        pos = 0
        k = self._keylen
        rows = bytearray()
        while pos < len(data):
            start = pos
            kind = data[pos : pos + 1]
            key = data[pos + 1 : pos + 1 + k]
            pos += 1 + k
            n = shift = 0
            ok = False
            while pos < len(data) and shift < 64:
                b = data[pos]
                pos += 1
                n |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    ok = True
                    break
            if not ok or len(key) != k or pos + n > len(data):
                os.ftruncate(self._fd, self._end + start)
                data = data[:start]
                break
            row = (self._end + pos, n, kind)
            self._recent[key] = row
            rows += key + _ROW.pack(*row)
            pos += n
        self._end += len(data)
        if rows:
            os.write(self._log, rows)

    def _find(self, key: bytes) -> tuple[int, int, bytes] | None:
        with self._lock:  # the table may be swapped by a compaction in another thread
            return self._find_locked(key)

    def _find_locked(self, key: bytes) -> tuple[int, int, bytes] | None:
        row = self._recent.get(key)
        if row is not None:
            return row
        table = self._table
        if table is None:
            return None
        lo, hi, k, width = 0, self._table_rows, self._keylen, self._rowlen
        while lo < hi:
            mid = (lo + hi) // 2
            at = 24 + mid * width
            probe = table[at : at + k]
            if probe < key:
                lo = mid + 1
            elif probe > key:
                hi = mid
            else:
                offset, length, kind = _ROW.unpack_from(table, at + k)
                return offset, length, kind
        return None

    def _locate(self, key: bytes) -> tuple[int, int, bytes] | None:
        found = self._find(key)
        if found is None:
            with self._flock():  # perhaps another process appended it
                self._catch_up()
            found = self._find(key)
        return found

    def _compact(self) -> None:
        """Merge the log into a new sorted table. Call under :meth:`_flock`."""
        rows: list[bytes] = []
        if self._table is not None:
            t = self._table
            w = self._rowlen
            rows = [t[24 + i * w : 24 + (i + 1) * w] for i in range(self._table_rows)]
        rows += [key + _ROW.pack(*row) for key, row in self._recent.items()]
        rows.sort()
        tmp = self._idx_path.with_name("objects.idx.tmp")
        with open(tmp, "wb") as f:
            f.write(_IDX_MAGIC + struct.pack(">QQ", self._end, len(rows)))
            f.write(b"".join(rows))
            if self.fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, self._idx_path)
        os.ftruncate(self._log, 0)
        self._open_table()
        self._recent.clear()

    # -- frames ----------------------------------------------------------------------

    def _append(self, frames: list[tuple[bytes, bytes, bytes]]) -> None:
        """Append ``(kind, key, body)`` frames (those not already held) and log them."""
        with self._flock():
            self._catch_up()
            out = bytearray()
            rows = bytearray()
            seen: set[bytes] = set()
            pending: dict[bytes, tuple[int, int, bytes]] = {}
            for kind, key, body in frames:
                if key in seen or self._find(key) is not None:
                    continue
                seen.add(key)
                n = len(body)
                out += kind + key + _varint(n)
                row = (self._end + len(out), n, kind)
                out += body
                pending[key] = row
                rows += key + _ROW.pack(*row)
            if not out:
                return
            view = memoryview(bytes(out))
            at = self._end
            while view:
                written = os.pwrite(self._fd, view, at)
                view = view[written:]
                at += written
            if self.fsync:
                os.fsync(self._fd)
            self._end = at
            os.write(self._log, rows)
            self._recent.update(pending)
            if len(self._recent) > max(4096, self._table_rows // 8):
                self._compact()

    def _body(self, key: bytes) -> tuple[bytes, bytes]:
        found = self._locate(key)
        if found is None:
            raise ObjectMissing(key)
        offset, length, kind = found
        body = os.pread(self._fd, length, offset)
        if len(body) != length:
            raise DecodeError(f"object {key.hex()}", "truncated in the pack")
        return kind, body

    def _hash(self, data: bytes) -> bytes:
        return hashlib.new(self.object_format, data).digest()

    def _split_entries(self, body: bytes) -> list[tuple[bytes, bytes]] | None:
        """``(sort key, raw entry)`` of each entry of a Git tree body, in its order;
        ``None`` if it is not one Git would write."""
        out = []
        pos = 0
        n = len(body)
        k = self._keylen
        while pos < n:
            nul = body.find(b"\0", pos)
            space = body.find(b" ", pos, nul)
            end = nul + 1 + k
            if nul < 0 or space < 0 or end > n:
                return None
            name = body[space + 1 : nul]
            out.append((name + b"/" if body[pos:space] == b"40000" else name, body[pos:end]))
            pos = end
        return out

    def _chunk_frames(
        self, entries: list[tuple[bytes, bytes]]
    ) -> tuple[list[tuple[bytes, bytes, bytes]], list[tuple[bytes, bytes, int]]]:
        """Chunks of ``entries`` (in order): frames, and ``(first sort key, key,
        length)`` of each. A chunk ends after an entry whose name hashes to a boundary,
        so chunks depend only on the entries near them (see :data:`CHUNK`)."""
        frames = []
        chunks = []
        start = 0
        for i, (sort, _) in enumerate(entries):
            last = i == len(entries) - 1
            h = int.from_bytes(hashlib.blake2b(sort, digest_size=4).digest(), "big")
            if last or h % CHUNK == 0:
                body = b"".join(raw for _, raw in entries[start : i + 1])
                key = self._hash(_SHARD + body)
                frames.append((_SHARD, key, body))
                chunks.append((entries[start][0], key, len(body)))
                start = i + 1
        return frames, chunks

    def _inode_frame(
        self, oid: bytes, count: int, chunks: list[tuple[bytes, bytes, int]]
    ) -> tuple[bytes, bytes, bytes]:
        out = bytearray(struct.pack(">QI", count, len(chunks)))
        for first, key, length in chunks:
            out += struct.pack(">IH", length, len(first)) + first + key
        out += self._hash(bytes(out))
        return (_INODE, oid, bytes(out))

    def _parse_inode(self, oid: bytes, body: bytes) -> tuple[int, list[tuple[bytes, bytes, int]]]:
        what = f"tree {oid.hex()}"
        k = self._keylen
        h = len(self._hash(b""))
        if len(body) < 12 + h or self._hash(body[:-h]) != body[-h:]:
            raise DecodeError(what, "bad inode (checksum)")
        count, n = struct.unpack_from(">QI", body, 0)
        pos = 12
        chunks = []
        for _ in range(n):
            if pos + 6 > len(body) - h:
                raise DecodeError(what, "bad inode (truncated)")
            length, flen = struct.unpack_from(">IH", body, pos)
            pos += 6
            first = body[pos : pos + flen]
            key = body[pos + flen : pos + flen + k]
            pos += flen + k
            if len(key) != k or pos > len(body) - h:
                raise DecodeError(what, "bad inode (truncated)")
            chunks.append((first, key, length))
        return count, chunks

    def _chunk(self, oid: bytes, key: bytes) -> bytes:
        kind, body = self._body(key)
        if kind != _SHARD or self._hash(_SHARD + body) != key:
            raise CorruptObject(key, self._hash(kind + body), f"chunk of tree {oid.hex()}")
        return body

    def _frames_of(
        self, kind: ObjectType, body: bytes, oid: bytes
    ) -> list[tuple[bytes, bytes, bytes]]:
        flat = [(_CODES[kind], oid, body)]
        if kind is not ObjectType.TREE or body.count(b"\0") <= SPLIT:
            return flat
        entries = self._split_entries(body)
        if entries is None or len(entries) <= SPLIT:
            return flat  # small, or not a tree Git would write: kept as it is
        frames, chunks = self._chunk_frames(entries)
        return [*frames, self._inode_frame(oid, len(entries), chunks)]

    def _inode_body(self, oid: bytes, body: bytes) -> bytes:
        _, chunks = self._parse_inode(oid, body)
        return b"".join(self._chunk(oid, key) for _, key, _ in chunks)

    # -- large trees without reading them whole -----------------------------------------

    def is_inode(self, oid: bytes) -> bool:
        """Whether the tree ``oid`` is stored as an inode (more than :data:`SPLIT`
        entries)."""
        found = self._locate(oid)
        return found is not None and found[2] == _INODE

    def _entries_of_chunk(self, oid: bytes, key: bytes) -> list[tuple[bytes, bytes]]:
        cached = self._chunks.get(key)  # chunks are immutable: keep the recent ones
        if cached is not None:
            return cached
        entries = self._split_entries(self._chunk(oid, key))
        if entries is None:
            raise DecodeError(f"tree {oid.hex()}", "bad chunk")
        if len(self._chunks) >= 512:
            self._chunks.clear()
        self._chunks[key] = entries
        return entries

    def _inode(self, oid: bytes) -> tuple[int, list[tuple[bytes, bytes, int]], list[bytes]]:
        """The entry count, chunks and first names of the inode ``oid`` (cached)."""
        cached = self._inodes.get(oid)
        if cached is not None:
            return cached
        code, body = self._body(oid)
        if code != _INODE:
            raise DecodeError(f"tree {oid.hex()}", "not an inode")
        count, chunks = self._parse_inode(oid, body)
        parsed = (count, chunks, [first for first, _, _ in chunks])
        if len(self._inodes) >= 256:
            self._inodes.clear()
        self._inodes[oid] = parsed
        return parsed

    def inode_entry(self, oid: bytes, name: str) -> tuple[bytes, bytes] | None:
        """The raw mode and id of ``name`` in the inode tree ``oid`` (``None`` if
        absent), reading one chunk."""
        _, chunks, firsts = self._inode(oid)
        raw = name.encode()
        for sort in (raw, raw + b"/"):
            i = max(0, bisect.bisect_right(firsts, sort) - 1)
            for s, entry in self._entries_of_chunk(oid, chunks[i][1]):
                if s == sort:
                    space = entry.index(b" ")
                    return entry[:space], entry[-self._keylen :]
        return None

    def inode_update(self, oid: bytes, name: str, entry: tuple[bytes, bytes] | None) -> bytes:
        """The id of the inode tree ``oid`` with ``name`` set to ``entry`` (raw mode,
        id) or removed (``None``): one or two chunks and the inode are written; the
        id is Git's (the whole body is hashed, from the chunks). The result may be a
        small tree (stored whole) or empty."""
        count, chunks, firsts = self._inode(oid)
        raw = name.encode()
        # the chunks where the name is or would go (as contents or as a tree; names
        # may sort between the two), and the next one, in case a boundary goes away
        lo = max(0, bisect.bisect_right(firsts, raw) - 1)
        at = max(0, bisect.bisect_right(firsts, raw + b"/") - 1)
        run = [e for c in chunks[lo : at + 2] for e in self._entries_of_chunk(oid, c[1])]
        kept = [(s, e) for s, e in run if s not in (raw, raw + b"/")]
        count += len(kept) - len(run)
        if entry is not None:
            mode, child = entry
            sort = raw + b"/" if mode == b"40000" else raw
            bisect.insort(kept, (sort, mode + b" " + raw + b"\0" + child))
            count += 1
        if count <= SPLIT:  # small again: a plain tree
            whole = (
                [e for c in chunks[:lo] for e in self._entries_of_chunk(oid, c[1])]
                + kept
                + [e for c in chunks[at + 2 :] for e in self._entries_of_chunk(oid, c[1])]
            )
            return self.write(ObjectType.TREE, b"".join(e for _, e in whole))
        frames, middle = self._chunk_frames(kept) if kept else ([], [])
        new_chunks = chunks[:lo] + middle + chunks[at + 2 :]
        h = hashlib.new(self.object_format)
        h.update(b"tree %d\0" % sum(length for _, _, length in new_chunks))
        fresh = {key: body for _, key, body in frames}
        for _, key, _ in new_chunks:
            h.update(fresh[key] if key in fresh else self._chunk(oid, key))
        new = h.digest()
        if self._find(new) is None:
            self._append([*frames, self._inode_frame(new, count, new_chunks)])
        return new

    # -- Backend -----------------------------------------------------------------------

    def read(self, oid: bytes) -> tuple[ObjectType, bytes]:
        code, body = self._body(oid)
        if code == _INODE:
            kind, body = ObjectType.TREE, self._inode_body(oid, body)
        elif code in _KINDS:
            kind = _KINDS[code]
        else:
            raise DecodeError(f"object {oid.hex()}", f"a record of kind {code!r}, not an object")
        actual = hash_object(kind, body, self.object_format)
        if actual != oid:
            raise CorruptObject(oid, actual, str(self._pack_path))
        return kind, body

    def contains(self, oid: bytes) -> bool:
        found = self._locate(oid)
        return found is not None and found[2] != _SHARD

    def write(self, kind: ObjectType, body: bytes) -> bytes:
        return self.write_many([(kind, body)])[0]

    def write_many(self, objects: Iterable[tuple[ObjectType, bytes]]) -> list[bytes]:
        oids = []
        frames = []
        for kind, body in objects:
            oid = hash_object(kind, body, self.object_format)
            oids.append(oid)
            if self._find(oid) is None:
                frames += self._frames_of(kind, bytes(body), oid)
        if frames:
            self._append(frames)
        return oids

    # -- references ----------------------------------------------------------------------

    def _ref_path(self, name: str) -> Path:
        check_ref_name(name)
        if not name.startswith("refs/"):
            raise RefError(f"not a ref under refs/: {name!r}")
        return self.root / name

    def _read_ref(self, path: Path) -> bytes | None:
        try:
            text = path.read_bytes().strip()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        try:
            oid = bytes.fromhex(text.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            raise DecodeError(f"ref {path.name}", f"bad value {text[:50]!r}") from None
        if len(oid) != self._keylen:
            raise DecodeError(f"ref {path.name}", f"bad value {text[:50]!r}")
        return oid

    def get_ref(self, name: str) -> bytes | None:
        if name == "HEAD":
            name = self.head()
        return self._read_ref(self._ref_path(name))

    def update_ref(self, name: str, expected: bytes | None, new: bytes | None) -> None:
        if name == "HEAD":
            name = self.head()
        path = self._ref_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = path.with_name(path.name + ".lock")
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise RefLocked(f"{path.name} is locked ({lock.name} exists)") from None
        done = False
        try:
            actual = self._read_ref(path)
            if actual != expected:
                raise RefUpdateRejected(name, expected, actual)
            if new is None:
                os.close(fd)
                fd = -1
                path.unlink(missing_ok=True)
                lock.unlink()
                done = True
                return
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

    def list_refs(self, prefix: str = "refs/") -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        base = self.root / "refs"
        for dirpath, _dirs, files in os.walk(base):
            for f in files:
                if f.endswith(".lock"):
                    continue
                name = "refs/" + (Path(dirpath) / f).relative_to(base).as_posix()
                if name.startswith(prefix):
                    oid = self._read_ref(self.root / name)
                    if oid is not None:
                        out[name] = oid
        return dict(sorted(out.items()))

    def head(self) -> str:
        text = (self.root / "HEAD").read_text().strip()
        if not text.startswith("ref: "):
            raise DecodeError("HEAD", f"not a symbolic ref: {text[:50]!r}")
        return text[5:]

    def set_head(self, ref: str) -> None:
        if not check_ref_name(ref).startswith("refs/"):
            raise RefError(f"HEAD must name a branch, not {ref!r}")
        tmp = self.root / "HEAD.lock"
        tmp.write_text(f"ref: {ref}\n")
        os.replace(tmp, self.root / "HEAD")

    def indexed(self) -> tuple[int, int]:
        """Rows in the sorted index and in the log (for tests)."""
        return self._table_rows, len(self._recent)
