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
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ._errors import CorruptObject, DecodeError, ObjectMissing, RefError, RefUpdateRejected
from ._objects import ObjectType, decode_loose, encode_loose, hash_object
from ._pack import Pack, PackIndex, read_index, write_index, write_pack
from ._refs import (
    PackedRef,
    check_ref_name,
    decode_loose_ref,
    decode_packed_refs,
    encode_packed_refs,
)

__all__ = ["GitBackend", "RefLocked"]

_CONFIG = (
    "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = {bare}\n"
    "\tlogallrefupdates = false\n"
)


_TIERS = (64, 2048, 65536)  # pack sizes (objects) below which packs are merged


class RefLocked(RefError):
    """Another writer holds ``<ref>.lock``; retry later."""


class _Lock:
    """A held ``<file>.lock``: ``commit`` writes it and renames it over the file."""

    def __init__(self, path: Path, target: Path) -> None:
        self.path = path
        self.target = target
        self.committed = False

    def commit(self, data: bytes, fsync: bool) -> None:
        with open(self.path, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(self.path, self.target)
        self.committed = True


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
        self._objects = self.git_dir / "objects"
        self._objects_str = str(self._objects)
        self._git_dir_str = str(self.git_dir)
        self._packs: dict[str, Pack] = {}
        self._dirs: set[Path] = set()
        self._lock = threading.Lock()
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
        **options: Any,
    ) -> GitBackend:
        """Create a repository (bare, or with a ``.git`` directory) unless one exists."""
        git_dir = Path(path) if bare else Path(path) / ".git"
        if not (git_dir / "HEAD").is_file():
            for sub in ("objects/pack", "objects/info", "refs/heads", "refs/tags"):
                (git_dir / sub).mkdir(parents=True, exist_ok=True)
            (git_dir / "config").write_text(_CONFIG.format(bare=str(bare).lower()))
            (git_dir / "HEAD").write_text(f"ref: refs/heads/{branch}\n")
        return cls(git_dir, fsync, **options)

    # -- objects -------------------------------------------------------------

    def _loose_path(self, oid: bytes) -> Path:
        h = oid.hex()
        return self._objects / h[:2] / h[2:]

    def _scan_packs(self) -> None:
        pack_dir = self._objects / "pack"
        if not pack_dir.is_dir():
            return
        for idx in sorted(pack_dir.glob("pack-*.idx")):
            name = idx.stem
            if name in self._packs:
                continue
            pack_path = idx.with_suffix(".pack")
            try:
                data = pack_path.read_bytes()
                index = read_index(idx.read_bytes(), str(idx.name))
            except FileNotFoundError:
                continue
            self._packs[name] = Pack(data, index, pack_path.name)

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
            with self._lock:
                self._scan_packs()
            found = self._from_packs(oid)
            if found is None:
                raise ObjectMissing(oid) from None
            return found
        kind, body = decode_loose(data, f"loose object {h}")
        actual = hash_object(kind, body)
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

    def _write_file(self, path: Path, data: bytes) -> None:
        tmp = path.with_name(f".tmp-{os.getpid()}-{threading.get_ident()}-{path.name}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o444)
        try:
            os.write(fd, data)
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)

    def write(self, kind: ObjectType, body: bytes) -> bytes:
        oid = hash_object(kind, body)
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
        pack, entries = write_pack(items)
        self.add_pack(pack, entries)
        if len(items) < _TIERS[-1]:
            self._consolidate()
        return [hash_object(kind, body) for kind, body in items]

    def _consolidate(self) -> None:
        """Merge small packs: for each size tier (64, 2048, 65536 objects), once
        ``consolidate_at`` packs are between the tier below and this one, every pack
        below it becomes one pack (so an object is rewritten a few times at most, as
        in a geometric repack).

        The new pack and its index are complete before an old index, then its pack,
        is removed (the order ``git repack`` uses), so a reader never misses an
        object; a crash in between leaves objects in two packs, which is harmless.
        """
        low = 0
        for tier in _TIERS:
            with self._lock:
                small = [(n, p) for n, p in self._packs.items() if len(p) < tier]
            if sum(len(p) >= low for _, p in small) >= self.consolidate_at:
                self._merge_packs(small)
            low = tier

    def _merge_packs(self, small: list[tuple[str, Pack]]) -> None:
        objects = []
        for _, p in small:
            objects += [p.get(oid, self._lookup) for oid in p.ids()]
        pack, entries = write_pack([o for o in objects if o is not None])
        self.add_pack(pack, entries)
        new = f"pack-{pack[-20:].hex()}"
        pack_dir = self._objects / "pack"
        for name, _ in small:
            if name == new:
                continue
            for suffix in (".idx", ".pack"):
                with contextlib.suppress(FileNotFoundError):
                    (pack_dir / f"{name}{suffix}").unlink()
            with self._lock:
                self._packs.pop(name, None)

    def add_pack(
        self, pack: bytes, entries: list[tuple[bytes, int, int]] | None = None
    ) -> list[tuple[bytes, int, int]]:
        """Install a pack (indexed here unless ``entries`` are given, so a pack from a
        peer is checked in full); returns its entries."""
        if entries is None:
            index = Pack.from_bytes(pack, "received pack").index
            entries = [(oid, off, index.crcs[oid]) for oid, off in index.offsets.items()]
        name = f"pack-{pack[-20:].hex()}"
        pack_dir = self._objects / "pack"
        pack_dir.mkdir(exist_ok=True)
        self._write_file(pack_dir / f"{name}.pack", pack)
        idx = write_index(entries, pack[-20:])
        self._write_file(pack_dir / f"{name}.idx", idx)
        index = PackIndex(
            {oid: off for oid, off, _ in entries}, {oid: crc for oid, _, crc in entries}, pack[-20:]
        )
        with self._lock:
            self._packs[name] = Pack(pack, index, f"{name}.pack")
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
            with open(f"{self._git_dir_str}/{name}", "rb") as f:
                data = f.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
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

    @contextlib.contextmanager
    def _locked(self, path: Path) -> Iterator[_Lock]:
        lock = _Lock(path.with_name(path.name + ".lock"), path)
        lock.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(lock.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise RefLocked(f"{path.name} is locked ({lock.path.name} exists)") from None
        os.close(fd)
        try:
            yield lock
        finally:
            if not lock.committed:
                with contextlib.suppress(FileNotFoundError):
                    lock.path.unlink()

    def update_ref(self, name: str, expected: bytes | None, new: bytes | None) -> None:
        name, _ = self._resolve(check_ref_name(name))
        path = self.git_dir / name
        with self._locked(path) as lock:
            actual = self._resolve(name)[1]
            if actual != expected:
                raise RefUpdateRejected(name, expected, actual)
            if new is not None:
                lock.commit(new.hex().encode() + b"\n", self.fsync)
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
