"""A Git repository on disk as a :class:`~mirage.irmin.Backend`, bit-compatible with
``git``.

Theory of operation: objects are written as loose files (to a temporary name, then
renamed) or, in bulk, as a pack and its ``.idx`` (the index renamed last, so ``git``
never sees a pack without one). Reads try the loose file, then every pack; an id
found in no pack makes the pack directory be scanned again (another process may have
added one). Every object read is hashed and checked against its id.

A reference update takes ``<ref>.lock`` with ``O_CREAT | O_EXCL`` (as ``git`` does),
checks the current value, writes the new one into the lock file and renames it over
the ref. Objects are always complete on disk before a ref points to them, so a
writer killed at any point leaves a repository that ``git fsck`` accepts.

Renaming a new file over a ref frees the old ref's inode, and on ext4 that (and the
write-back forced by a rename over a file) costs a disk round trip, more than the
rest of a commit. So the replaced inode is kept under a spare name
(``irmin-spare/<hex of the ref name>`` in the Git directory) and reused: the next
update takes the lock by hard-linking the spare to ``<ref>.lock`` (``link`` fails if
the lock exists, exactly as ``O_EXCL`` does, so ``git`` and we still exclude each
other), overwrites its 41 bytes in place, and renames it over the ref after linking
the ref's inode as the new spare. Nothing is freed, and readers still see the old or
the new value, never a mix. A spare that is the ref itself (a writer killed between
the two steps) is never written in place: linked as the lock, a spare has two names,
and a third is the live ref (one ``fstat`` tells). The ref is read once per update,
under the lock; a ref we wrote as an id is not read before locking it (if it became
symbolic meanwhile, the update lets the lock go and resolves it again).
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import struct
import threading
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ._errors import CorruptObject, DecodeError, ObjectMissing, RefError, RefUpdateRejected
from ._objects import (
    OBJECT_FORMATS,
    ObjectType,
    decode_loose,
    encode_loose,
    hash_object,
    hasher,
    oid_length,
)
from ._pack import (
    Pack,
    PackIndex,
    map_file,
    read_index,
    write_hashed_pack,
    write_index,
    write_pack,
)
from ._refs import (
    PackedRef,
    check_ref_name,
    decode_loose_ref,
    decode_packed_refs,
    encode_packed_refs,
)

__all__ = ["GitBackend", "RefLocked"]

_CONFIG = (
    "[core]\n\trepositoryformatversion = {version}\n\tfilemode = true\n\tbare = {bare}\n"
    "\tlogallrefupdates = false\n"
)
_SHA256_CONFIG = "[extensions]\n\tobjectformat = sha256\n"


def _object_format(config: str) -> str:
    """``extensions.objectFormat`` of a Git config (``sha1`` when absent)."""
    section = ""
    for raw in config.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if line.startswith("[") and "]" in line:
            section = line[1 : line.index("]")].strip().lower()
        elif section == "extensions" and "=" in line:
            key, _, value = line.partition("=")
            if key.strip().lower() == "objectformat":
                algo = value.strip().lower()
                if algo not in OBJECT_FORMATS:
                    raise RefError(f"unknown object format {algo!r}")
                return algo
    return "sha1"


_TIERS = (64, 2048, 65536)  # pack sizes (objects) below which packs are merged


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _link_quietly(source: str, dest: str) -> None:
    """Hard-link ``source`` as ``dest`` if both can be (no loose ref: nothing to keep)."""
    try:
        os.link(source, dest)
    except FileNotFoundError:
        if not os.path.exists(source):
            return
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with contextlib.suppress(FileNotFoundError, FileExistsError):
            os.link(source, dest)
    except FileExistsError:
        pass


class RefLocked(RefError):
    """Another writer holds ``<ref>.lock``; retry later."""


class _Lock:
    """A held ``<file>.lock`` (its descriptor open): ``commit`` writes it and renames
    it over the file."""

    def __init__(self, path: Path, target: Path, fd: int, spare: str | None = None) -> None:
        self.path = path
        self.target = target
        self.fd = fd
        self.spare = spare  # the lock is this spare inode, linked: write it in place
        self.keep: str | None = None  # where to keep the target's inode when replaced
        self.committed = False

    def commit(self, data: bytes, fsync: bool) -> None:
        fd, self.fd = self.fd, -1
        try:
            if self.spare is not None:
                # Linked as the spare and the lock, the inode has two names; a third
                # is the live ref (a writer killed between linking it as the spare
                # and renaming the lock over it): never write that in place.
                st = os.fstat(fd)
                if st.st_nlink != 2:
                    fd = self._fresh(fd, data, fsync)
                else:
                    os.pwrite(fd, data, 0)
                    if st.st_size > len(data):
                        os.ftruncate(fd, len(data))
            else:
                os.write(fd, data)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if self.keep is not None:
            if self.spare is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.spare)
            _link_quietly(str(self.target), self.keep)
        os.replace(self.path, self.target)
        self.committed = True

    def _fresh(self, fd: int, data: bytes, fsync: bool) -> int:
        """A new inode for the lock (renamed over it: the lock is held throughout)."""
        os.close(fd)
        # Ends in .lock: git (and list_refs) skip such names among the refs, so one
        # left by a writer killed before the rename is not taken for a ref.
        tmp = f"{self.path}.{os.getpid()}-{threading.get_ident()}.lock"
        new = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.replace(tmp, self.path)
        self.spare = None
        os.write(new, data)
        return new

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class GitBackend:
    """A Git directory (``.git`` or a bare repository).

    ``fsync``: flush objects and refs to the disk before renaming them (survives a
    power loss, not only a killed process). ``small_packs``: write a batch of objects
    (a commit with its trees and blobs) as one small pack instead of one file each;
    ``consolidate_at`` small packs are merged into one.
    """

    def __init__(
        self,
        git_dir: str | os.PathLike[str],
        fsync: bool = False,
        small_packs: bool = True,
        consolidate_at: int = 32,
    ) -> None:
        self.git_dir = Path(git_dir)
        self.small_packs = small_packs
        self.consolidate_at = consolidate_at
        if not (self.git_dir / "HEAD").is_file() or not (self.git_dir / "objects").is_dir():
            raise RefError(f"{self.git_dir} is not a Git directory")
        self.fsync = fsync
        try:
            config = (self.git_dir / "config").read_text("utf-8", "replace")
        except FileNotFoundError:
            config = ""
        self.object_format = _object_format(config)
        """``sha1`` or ``sha256`` (``extensions.objectFormat``): how ids are made."""
        self._h = oid_length(self.object_format)
        self._objects = self.git_dir / "objects"
        self._objects_str = str(self._objects)
        self._git_dir_str = str(self.git_dir)
        self._packs: dict[str, Pack] = {}
        self._dirs: set[Path] = set()
        self._lock = threading.Lock()
        self._direct: set[str] = set()  # refs we wrote as ids (checked again under lock)
        self._scan_packs()

    @classmethod
    def open(cls, path: str | os.PathLike[str], fsync: bool = False, **options: Any) -> GitBackend:
        """A repository's Git directory: ``path/.git`` if it exists, else ``path``."""
        p = Path(path)
        return cls(p / ".git" if (p / ".git").is_dir() else p, fsync, **options)

    @classmethod
    def init(
        cls,
        path: str | os.PathLike[str],
        bare: bool = True,
        branch: str = "main",
        fsync: bool = False,
        object_format: str = "sha1",
        **options: Any,
    ) -> GitBackend:
        """Create a repository (bare, or with a ``.git`` directory) unless one exists;
        ``object_format="sha256"`` makes a SHA-256 repository (as ``git init
        --object-format=sha256``)."""
        if object_format not in OBJECT_FORMATS:
            raise ValueError(f"unknown object format {object_format!r}")
        git_dir = Path(path) if bare else Path(path) / ".git"
        if not (git_dir / "HEAD").is_file():
            for sub in ("objects/pack", "objects/info", "refs/heads", "refs/tags"):
                (git_dir / sub).mkdir(parents=True, exist_ok=True)
            sha256 = object_format == "sha256"
            config = _CONFIG.format(bare=str(bare).lower(), version=1 if sha256 else 0)
            (git_dir / "config").write_text(config + (_SHA256_CONFIG if sha256 else ""))
            (git_dir / "HEAD").write_text(f"ref: refs/heads/{branch}\n")
        return cls(git_dir, fsync, **options)

    # -- objects -------------------------------------------------------------

    def _loose_path(self, oid: bytes) -> Path:
        h = oid.hex()
        return self._objects / h[:2] / h[2:]

    def _scan_packs(self) -> int:
        """Add the packs not known yet; how many were added."""
        pack_dir = self._objects / "pack"
        if not pack_dir.is_dir():
            return 0
        added = 0
        for idx in sorted(pack_dir.glob("pack-*.idx")):
            name = idx.stem
            if name in self._packs:
                continue
            pack_path = idx.with_suffix(".pack")
            try:
                data = map_file(str(pack_path))
                index = read_index(idx.read_bytes(), str(idx.name), self.object_format)
            except FileNotFoundError:
                continue
            self._packs[name] = Pack(data, index, pack_path.name, self.object_format)
            added += 1
        return added

    def _rescan_for(self, oid: bytes) -> tuple[ObjectType, bytes] | None:
        """Look for ``oid`` in packs added since the last scan. A listing made while
        another process merges packs may miss both the new pack (added during it) and
        the old one (removed before it is opened); the new pack is in place before
        the old one goes, so a second listing finds it. Scans repeat while they find
        new packs (a few times at most)."""
        for attempt in range(4):
            with self._lock:
                added = self._scan_packs()
            found = self._from_packs(oid)
            if found is not None or (attempt and not added):
                return found
        return None

    def pack_name(self, pack: bytes) -> str:
        """The file name (without suffix) of a pack: ``pack-<its checksum>``."""
        return f"pack-{pack[-self._h :].hex()}"

    def refresh(self) -> None:
        """Look for packs added by others."""
        with self._lock:
            self._scan_packs()

    def packs(self) -> list[tuple[str, Pack]]:
        """The packs known (by name, ``pack-<checksum>``)."""
        with self._lock:
            return list(self._packs.items())

    def forget_pack(self, name: str) -> None:
        """Stop reading a pack (its files were removed)."""
        with self._lock:
            self._packs.pop(name, None)

    def _from_packs(self, oid: bytes) -> tuple[ObjectType, bytes] | None:
        for pack in list(self._packs.values()):
            if oid in pack:
                return pack.get(oid, self._lookup)
        return None

    def _lookup(self, oid: bytes) -> tuple[ObjectType, bytes] | None:
        try:
            return self.read(oid)
        except ObjectMissing:
            return None

    def read(self, oid: bytes) -> tuple[ObjectType, bytes]:
        found = self._from_packs(oid)
        if found is not None:
            return found
        h = oid.hex()
        try:
            with open(f"{self._objects_str}/{h[:2]}/{h[2:]}", "rb") as f:
                data = f.read()
        except (FileNotFoundError, NotADirectoryError):
            found = self._rescan_for(oid)
            if found is None:
                raise ObjectMissing(oid) from None
            return found
        kind, body = decode_loose(data, f"loose object {h}")
        actual = hash_object(kind, body, self.object_format)
        if actual != oid:
            raise CorruptObject(oid, actual, "loose object")
        return kind, body

    def contains(self, oid: bytes) -> bool:
        if self._loose_path(oid).is_file():
            return True
        if any(oid in p for p in self._packs.values()):
            return True
        with self._lock:
            self._scan_packs()
        return any(oid in p for p in self._packs.values())

    def _write_file(self, path: Path | str, data: bytes) -> None:
        head, _, tail = str(path).rpartition("/")
        tmp = f"{head}/.tmp-{os.getpid()}-{threading.get_ident()}-{tail}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o444)
        try:
            _write_all(fd, data)
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)

    def _write_pack_file(self, path: str, data: bytes) -> None:
        """Write a ``.pack`` under its final name (no rename: neither ``git`` nor we
        look at a pack before its ``.idx`` exists, and the index is renamed into
        place after the pack is complete). A pack file already there (another writer
        of the same pack, or one killed before its index) is replaced by a complete
        copy through a temporary name."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        except FileExistsError:
            self._write_file(path, data)
            return
        try:
            _write_all(fd, data)
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def write(self, kind: ObjectType, body: bytes) -> bytes:
        oid = hash_object(kind, body, self.object_format)
        path = self._loose_path(oid)
        if path.exists():
            return oid
        if path.parent not in self._dirs:
            path.parent.mkdir(exist_ok=True)
            self._dirs.add(path.parent)
        self._write_file(path, encode_loose(kind, body))
        return oid

    def write_many(self, objects: Iterable[tuple[ObjectType, bytes]]) -> list[bytes]:
        """Write objects as one pack (two files, whatever their number), or loose if
        there is one or ``small_packs`` is off and they are few. Once
        ``consolidate_at`` small packs exist, they are merged into one."""
        items = list(objects)
        if len(items) <= 1 or (not self.small_packs and len(items) < 64):
            return [self.write(kind, body) for kind, body in items]
        pack, entries = write_pack(items, algo=self.object_format)
        self.add_pack(pack, entries)
        if len(items) < _TIERS[-1]:
            self._consolidate()
        return [hash_object(kind, body, self.object_format) for kind, body in items]

    def write_hashed(self, objects: Mapping[bytes, tuple[ObjectType, bytes]]) -> None:
        """:meth:`write_many` of objects by their ids, which the caller computed (a
        commit's staged objects: hashed once, not again here). A small batch is one
        pack of objects stored uncompressed (setting zlib up for a 100-byte object
        costs more than its few saved bytes; consolidation copies entries as they
        are, and ``git gc`` recompresses them)."""
        if len(objects) <= 1 or (not self.small_packs and len(objects) < 64):
            for kind, body in objects.values():
                self.write(kind, body)
            return
        level = 0 if len(objects) < _TIERS[0] else 1
        pack, entries = write_hashed_pack(
            ((oid, kind, body) for oid, (kind, body) in objects.items()),
            level,
            self.object_format,
        )
        self.add_pack(pack, entries)
        if len(objects) < _TIERS[-1]:
            self._consolidate()

    def _consolidate(self) -> None:
        """Merge small packs: for each size tier (64, 2048, 65536 objects), once
        ``consolidate_at`` packs are between the tier below and this one, every pack
        below it becomes one pack (so an object is rewritten a few times at most, as
        in a geometric repack).

        The new pack and its index are complete before an old index, then its pack,
        is removed (the order ``git repack`` uses), so a reader never misses an
        object; a crash in between leaves objects in two packs, which is harmless.
        """
        with self._lock:  # counted first: a commit must not pay for a list of packs
            sizes = [len(p.index.offsets) for p in self._packs.values()]
        if len(sizes) < self.consolidate_at:
            return
        low = 0
        for tier in _TIERS:
            if sum(low <= n < tier for n in sizes) >= self.consolidate_at:
                with self._lock:
                    small = [(n, p) for n, p in self._packs.items() if len(p) < tier]
                self._merge_packs(small)
                with self._lock:
                    sizes = [len(p.index.offsets) for p in self._packs.values()]
            low = tier

    def _merge_packs(self, small: list[tuple[str, Pack]]) -> None:
        raws = [p.raw_entries() for _, p in small]
        if all(r is not None for r in raws):
            pack, entries = self._concat_entries([e for r in raws if r for e in r])
        else:
            objects = []
            for _, p in small:
                objects += [p.get(oid, self._lookup) for oid in p.ids()]
            pack, entries = write_pack(
                [o for o in objects if o is not None], algo=self.object_format
            )
        self.add_pack(pack, entries)
        new = self.pack_name(pack)
        pack_dir = self._objects / "pack"
        for name, _ in small:
            if name == new:
                continue
            for suffix in (".idx", ".pack"):
                with contextlib.suppress(FileNotFoundError):
                    (pack_dir / f"{name}{suffix}").unlink()
            with self._lock:
                self._packs.pop(name, None)

    def _concat_entries(
        self, raw: list[tuple[bytes, bytes, int]]
    ) -> tuple[bytes, list[tuple[bytes, int, int]]]:
        """A pack of whole entries copied as they are (each id once): merging small
        packs inflates and deflates nothing."""
        unique: dict[bytes, tuple[bytes, int]] = {}
        for oid, e, crc in raw:
            unique.setdefault(oid, (e, crc))
        kept = [(oid, e, crc) for oid, (e, crc) in unique.items()]
        out = bytearray(b"PACK" + struct.pack(">II", 2, len(kept)))
        entries = []
        for oid, entry, crc in kept:
            entries.append((oid, len(out), crc or zlib.crc32(entry)))
            out += entry
        out += hasher(self.object_format)(out).digest()
        return bytes(out), entries

    def add_pack(
        self, pack: bytes, entries: list[tuple[bytes, int, int]] | None = None
    ) -> list[tuple[bytes, int, int]]:
        """Install a pack (indexed here unless ``entries`` are given, so a pack from a
        peer is checked in full); returns its entries."""
        if entries is None:
            index = Pack.from_bytes(pack, "received pack", self.object_format).index
            entries = [(oid, off, index.crcs[oid]) for oid, off in index.offsets.items()]
        name = self.pack_name(pack)
        checksum = pack[-self._h :]
        pack_dir = self._objects / "pack"
        if pack_dir not in self._dirs:
            pack_dir.mkdir(exist_ok=True)
            self._dirs.add(pack_dir)
        base = f"{self._objects_str}/pack/{name}"
        self._write_pack_file(f"{base}.pack", pack)
        idx = write_index(entries, checksum, self.object_format)
        self._write_file(f"{base}.idx", idx)
        index = PackIndex(
            {oid: off for oid, off, _ in entries}, {oid: crc for oid, _, crc in entries}, checksum
        )
        data: bytes | mmap.mmap = pack
        if len(pack) >= 1 << 20:  # keep big packs on the disk, not in memory
            with contextlib.suppress(FileNotFoundError):
                data = map_file(f"{base}.pack")
        with self._lock:
            self._packs[name] = Pack(data, index, f"{name}.pack", self.object_format)
        return entries

    # -- refs ----------------------------------------------------------------

    def _packed(self) -> dict[str, PackedRef]:
        try:
            data = (self.git_dir / "packed-refs").read_bytes()
        except FileNotFoundError:
            return {}
        return {r.name: r for r in decode_packed_refs(data)}

    def _read_ref_file(self, name: str) -> bytes | str | None:
        try:
            fd = os.open(f"{self._git_dir_str}/{name}", os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            data = os.read(fd, 4096)
        except IsADirectoryError:
            return None
        finally:
            os.close(fd)
        if len(data) == 4096:  # a long symbolic ref: read it all
            with open(f"{self._git_dir_str}/{name}", "rb") as f:
                data = f.read()
        return decode_loose_ref(data, name)

    def _resolve(self, name: str) -> tuple[str, bytes | None]:
        """The final ref name behind symbolic refs, and its id."""
        for _ in range(8):
            value = self._read_ref_file(name)
            if isinstance(value, str):
                name = value
                continue
            if value is None:
                packed = self._packed().get(name)
                value = packed.oid if packed else None
            return name, value
        raise RefError(f"symbolic ref loop at {name!r}")

    def get_ref(self, name: str) -> bytes | None:
        return self._resolve(check_ref_name(name))[1]

    def _spare(self, name: str) -> str:
        return f"{self._git_dir_str}/irmin-spare/{name.encode().hex()}"

    @contextlib.contextmanager
    def _locked(self, path: Path, spare: str | None = None) -> Iterator[_Lock]:
        """Hold ``<path>.lock``; with ``spare`` (a ref update), taken by linking the
        spare inode if there is one, and the replaced inode kept as the next spare."""
        lock_path = path.with_name(path.name + ".lock")
        if spare is not None:
            try:
                os.link(spare, lock_path)
            except FileExistsError:
                raise RefLocked(f"{path.name} is locked ({lock_path.name} exists)") from None
            except FileNotFoundError:
                pass  # no spare yet (or no directory for the lock): create the lock
            else:
                lock = _Lock(lock_path, path, os.open(lock_path, os.O_WRONLY), spare)
                lock.keep = spare
                try:
                    yield lock
                finally:
                    lock.release()
                    if not lock.committed:
                        with contextlib.suppress(FileNotFoundError):
                            lock.path.unlink()
                return
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            fd = os.open(lock_path, flags, 0o644)
        except FileExistsError:
            raise RefLocked(f"{path.name} is locked ({lock_path.name} exists)") from None
        except FileNotFoundError:  # a new ref in a new directory
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(lock_path, flags, 0o644)
            except FileExistsError:
                raise RefLocked(f"{path.name} is locked ({lock_path.name} exists)") from None
        lock = _Lock(lock_path, path, fd)
        lock.keep = spare
        try:
            yield lock
        finally:
            lock.release()
            if not lock.committed:
                with contextlib.suppress(FileNotFoundError):
                    lock.path.unlink()

    def update_ref(self, name: str, expected: bytes | None, new: bytes | None) -> None:
        name = check_ref_name(name)
        if name not in self._direct and not isinstance(self._read_ref_file(name), bytes):
            name, _ = self._resolve(name)  # symbolic (or packed, or absent)
        path = self.git_dir / name
        with self._locked(path, self._spare(name) if new is not None else None) as lock:
            value = self._read_ref_file(name)
            if isinstance(value, str):  # made symbolic since: resolve it again
                self._direct.discard(name)
                symbolic = True
            else:
                symbolic = False
                actual = value if value is not None else self._packed_oid(name)
                self._check_and_update(name, path, lock, expected=expected, actual=actual, new=new)
        if symbolic:
            self.update_ref(name, expected, new)

    def _packed_oid(self, name: str) -> bytes | None:
        packed = self._packed().get(name)
        return packed.oid if packed else None

    def _check_and_update(
        self,
        name: str,
        path: Path,
        lock: _Lock,
        *,
        expected: bytes | None,
        actual: bytes | None,
        new: bytes | None,
    ) -> None:
        """The compare-and-set of :meth:`update_ref`, ``<name>.lock`` held."""
        if actual != expected:
            raise RefUpdateRejected(name, expected, actual)
        if new is not None:
            lock.commit(new.hex().encode() + b"\n", self.fsync)
            self._direct.add(name)  # a loose ref holding an id: no need to look first
            return
        if name in self._packed():
            packed_path = self.git_dir / "packed-refs"
            with self._locked(packed_path) as plock:
                refs = [r for n, r in self._packed().items() if n != name]
                plock.commit(encode_packed_refs(refs), self.fsync)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self._prune_dirs(path.parent)

    def _prune_dirs(self, directory: Path) -> None:
        refs = self.git_dir / "refs"
        while directory != refs and refs in directory.parents:
            try:
                directory.rmdir()
            except OSError as e:
                if e.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                    return
                raise
            directory = directory.parent

    def list_refs(self, prefix: str = "refs/") -> dict[str, bytes]:
        out = {name: r.oid for name, r in self._packed().items()}
        refs = self.git_dir / "refs"
        for path in refs.rglob("*"):
            if path.is_file() and not path.name.endswith(".lock"):
                name = path.relative_to(self.git_dir).as_posix()
                try:
                    value = self._read_ref_file(name)
                except DecodeError:
                    continue
                if isinstance(value, bytes):
                    out[name] = value
                elif isinstance(value, str):
                    target = self._resolve(value)[1]
                    if target is not None:
                        out[name] = target
        return {k: out[k] for k in sorted(out) if k.startswith(prefix)}

    def head(self) -> str:
        value = self._read_ref_file("HEAD")
        if not isinstance(value, str):
            raise RefError("HEAD is detached or missing")
        return value

    def set_head(self, ref: str) -> None:
        if not check_ref_name(ref).startswith("refs/"):
            raise RefError(f"HEAD must name a branch, not {ref!r}")
        path = self.git_dir / "HEAD"
        with self._locked(path) as lock:
            lock.commit(f"ref: {ref}\n".encode(), self.fsync)
