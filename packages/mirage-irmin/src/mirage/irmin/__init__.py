"""mirage-irmin: a Git-compatible, mergeable, versioned store.

- the Git object model and codecs (:class:`Blob`, :class:`Tree`, :class:`Commit`,
  :class:`Tag`, loose objects, packs and ``.idx`` v2, refs and ``packed-refs``);
- backends: :class:`MemoryBackend`, :class:`GitBackend` (a repository ``git``
  reads and writes) and :class:`PackBackend` (Git objects in one append-only file
  with a persistent index, large trees as inodes of chunks, Git's ids);
- :class:`Repo` (trees, commits, history, diff, lowest common ancestors, three-way
  merge) and :class:`Store` (values at paths on a branch, each write a commit);
- sync: :func:`fetch`, :func:`push`, :func:`clone`, :func:`pack_for`,
  :func:`thin_pack_for` between backends, :func:`fetch_remote` and
  :func:`push_remote` with Git servers (``git upload-pack``/``receive-pack`` on a
  path, ``git daemon``, smart HTTP; fetches also in protocol version 2);
- :func:`repack`: one pack with deltas for history;
- :class:`StoreServer` (the store over HTTP, REST/JSON) and :class:`RemoteStore`,
  its client; :class:`RefPoller` and :class:`RefNotifier` (inotify), watches that
  notice refs moved by others;
- :class:`IrminKv`, the ``irmin`` ``kv_rw`` device.

Names are loaded on first use, so that loading the plugin imports nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "Backend",
    "Blob",
    "Change",
    "Commit",
    "Conflict",
    "CorruptObject",
    "DecodeError",
    "GitBackend",
    "Info",
    "IrminError",
    "IrminKv",
    "LogEntry",
    "MemoryBackend",
    "MergeConflict",
    "NotFastForward",
    "ObjectMissing",
    "ObjectType",
    "Pack",
    "PackBackend",
    "PathError",
    "Person",
    "PushRejected",
    "RefError",
    "RefLocked",
    "RefNotifier",
    "RefPoller",
    "RefUpdateRejected",
    "RemoteError",
    "RepackStats",
    "RemoteStore",
    "Repo",
    "Store",
    "StoreServer",
    "StoreService",
    "Tag",
    "TooManyRetries",
    "Tree",
    "TreeEntry",
    "Unmergeable",
    "Watch",
    "clone",
    "fetch",
    "fetch_remote",
    "merge",
    "pack_for",
    "push",
    "push_remote",
    "repack",
    "thin_pack_for",
    "run_poller",
    "run_watcher",
]

_WHERE = {
    "Backend": "_backend",
    "MemoryBackend": "_backend",
    "Blob": "_objects",
    "Commit": "_objects",
    "ObjectType": "_objects",
    "Person": "_objects",
    "Tag": "_objects",
    "Tree": "_objects",
    "TreeEntry": "_objects",
    "Change": "_repo",
    "Info": "_repo",
    "Repo": "_repo",
    "Watch": "_repo",
    "Conflict": "_errors",
    "CorruptObject": "_errors",
    "DecodeError": "_errors",
    "IrminError": "_errors",
    "MergeConflict": "_errors",
    "ObjectMissing": "_errors",
    "PathError": "_errors",
    "RefError": "_errors",
    "RefUpdateRejected": "_errors",
    "GitBackend": "_git",
    "RefLocked": "_git",
    "Pack": "_pack",
    "Store": "_store",
    "TooManyRetries": "_store",
    "Unmergeable": "_merge",
    "NotFastForward": "_sync",
    "clone": "_sync",
    "fetch": "_sync",
    "pack_for": "_sync",
    "push": "_sync",
    "thin_pack_for": "_sync",
    "IrminKv": "kv",
    "fetch_remote": "_remote",
    "push_remote": "_remote",
    "PushRejected": "_wire",
    "StoreServer": "_server",
    "StoreService": "_server",
    "RemoteStore": "_client",
    "RemoteError": "_client",
    "LogEntry": "_client",
    "RefNotifier": "_inotify",
    "RefPoller": "_watch",
    "PackBackend": "_packbackend",
    "RepackStats": "_repack",
    "repack": "_repack",
    "run_poller": "_watch",
    "run_watcher": "_inotify",
}

if TYPE_CHECKING:
    from . import _merge as merge
    from ._backend import Backend, MemoryBackend
    from ._client import LogEntry, RemoteError, RemoteStore
    from ._errors import (
        Conflict,
        CorruptObject,
        DecodeError,
        IrminError,
        MergeConflict,
        ObjectMissing,
        PathError,
        RefError,
        RefUpdateRejected,
    )
    from ._git import GitBackend, RefLocked
    from ._inotify import RefNotifier, run_watcher
    from ._merge import Unmergeable
    from ._objects import Blob, Commit, ObjectType, Person, Tag, Tree, TreeEntry
    from ._pack import Pack
    from ._packbackend import PackBackend
    from ._remote import fetch_remote, push_remote
    from ._repack import RepackStats, repack
    from ._repo import Change, Info, Repo, Watch
    from ._server import StoreServer, StoreService
    from ._store import Store, TooManyRetries
    from ._sync import NotFastForward, clone, fetch, pack_for, push, thin_pack_for
    from ._watch import RefPoller, run_poller
    from ._wire import PushRejected
    from .kv import IrminKv


def __getattr__(name: str) -> Any:
    from importlib import import_module

    if name == "__version__":
        from importlib.metadata import version

        return version("mirage-irmin")
    if name == "merge":
        return import_module("mirage.irmin._merge")
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'mirage.irmin' has no attribute {name!r}")
    return getattr(import_module(f"mirage.irmin.{module}"), name)
