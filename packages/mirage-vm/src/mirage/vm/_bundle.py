"""The image's bytecode in one file, and the importer that serves it.

An image imports a few hundred modules at boot. As files, each costs the path
finder's directory searches and an open, a stat and a read; under software emulation
that importer code runs cold, and the kernel unpacks one cpio entry per file. The
build instead writes the bytecode of every module (standard library, application,
mirage-tls) into ``/etc/mirage.bytecode``, and ``/init`` installs :class:`Bundle`
ahead of the path finder before it imports anything else. Measured on the static
website under QEMU (TCG): the first answer 0.14-0.2 s sooner (2.91-2.93 against
3.07-3.12 s).

Layout (all integers little-endian)::

    b"MIRAGEPY" | importlib MAGIC_NUMBER (4 bytes) | index length (8) | index | code

``index`` is ``marshal`` of ``{name: (is_package, origin, offset, length, deferred)}``,
each module's ``marshal``-ed code object at ``offset`` in ``code``. ``origin`` is where its
sourceless ``.pyc`` would be, so ``__file__`` and ``__path__`` are what they were
(a package's folder stays in the image and holds its extension modules, which the
path finder still loads, and its resources for ``importlib.resources``). ``/init`` maps
the file and reads the index: a module's code is read and unmarshalled when it is
imported.

A ``deferred`` module's code runs at its first use rather than at its import: the
module object is made and bound at once, and the first read of one of its attributes
(other than ``__spec__`` and ``__name__``, which the import system reads of modules it
already has) runs its code, as :class:`importlib.util.LazyLoader` does (without its
3.11 flaw: it loads on the import system's own ``__spec__`` read, so any second
``import`` of the module loads it). The build defers the standard-library modules
that only the standard library imports and that nothing used while the application
was imported (:func:`mirage.vm._image.trace`). For the static website those are
``inspect`` (which ``dataclasses`` imports for the docstring of a class without one;
with it ``ast`` and ``dis`` are never imported), ``tokenize``, ``linecache``,
``textwrap``, ``copy`` and four asyncio modules; all of them are still unused when
it serves. In the guest, ``-X importtime`` put 60-80 ms on them (most of it QEMU
translating code that runs once); the first answer moved by less than the run-to-run
noise of boots on this host. One used later runs then, at about the cost it had at
boot (a little more: the collector is on by then). A forked child gets new locks for
the deferred modules (a thread of its parent may have held one).

What stays files: ``encodings`` (CPython imports it before ``/init`` runs), ``os``
(the landmark by which CPython finds its library), this module, and modules of the
same name in two places (the path decides between them, as before).

Standard library only: this module runs as ``/init``'s first import. ``pack`` and
``unpack`` are for the build and for tests.
"""

import _thread
import marshal
import sys

TYPE_CHECKING = False  # no typing module at boot; mypy reads this block
if TYPE_CHECKING:
    import mmap
    import pathlib
    from collections.abc import Callable, Iterable
    from importlib.machinery import ModuleSpec
    from types import CodeType, ModuleType

HEAD = b"MIRAGEPY"
PATH = "/etc/mirage.bytecode"


def _magic() -> bytes:
    return sys.modules["_frozen_importlib_external"].MAGIC_NUMBER  # type: ignore[no-any-return]


Entry = tuple[bool, str, int, int, bool]  # is_package, origin, offset, length, deferred


def pack(modules: dict[str, tuple[bool, str, bytes]], deferred: "Iterable[str]" = ()) -> bytes:
    """The bundle of ``{name: (is_package, origin, marshalled code)}``, the modules
    named in ``deferred`` to run at their first use."""
    later = set(deferred)
    index = {}
    blobs = []
    offset = 0
    for name, (is_package, origin, code) in sorted(modules.items()):
        index[name] = (is_package, origin, offset, len(code), name in later)
        blobs.append(code)
        offset += len(code)
    encoded = marshal.dumps(index)
    return b"".join([HEAD, _magic(), len(encoded).to_bytes(8, "little"), encoded, *blobs])


def _index(head: bytes, encoded: bytes, code_size: int) -> dict[str, Entry]:
    """The index of a bundle, from its first 20 bytes, the index's bytes and the size
    of its code area; ImportError if it is not one this interpreter reads."""
    if len(head) < 20 or head[:8] != HEAD:
        raise ImportError("not a bytecode bundle")
    if head[8:12] != _magic():
        raise ImportError(
            f"the bytecode bundle is for another CPython (magic {head[8:12].hex()},"
            f" this one reads {_magic().hex()})"
        )
    if len(encoded) != int.from_bytes(head[12:20], "little") or code_size < 0:
        raise ImportError("the bytecode bundle is cut short")
    try:
        index = marshal.loads(encoded)
    except (EOFError, ValueError, TypeError) as exc:
        raise ImportError(f"the bytecode bundle's index is damaged: {exc}") from None
    if not isinstance(index, dict) or not all(_entry(k, v, code_size) for k, v in index.items()):
        raise ImportError("the bytecode bundle's index is damaged")
    return index


def unpack(data: "bytes | mmap.mmap") -> tuple[dict[str, Entry], memoryview]:
    """The index and the code area of a bundle; ImportError if it is not one this
    interpreter's bytecode version reads."""
    view = memoryview(data)
    size = int.from_bytes(view[12:20], "little") if len(view) >= 20 else 0
    index = _index(bytes(view[:20]), bytes(view[20 : 20 + size]), len(view) - 20 - size)
    return index, view[20 + size :]


def _entry(name: object, entry: object, limit: int) -> bool:
    """Whether ``name: entry`` is an index entry: a module name, and a package flag,
    an origin, a place within the ``limit`` bytes of code and a deferral flag."""
    if not isinstance(name, str) or not isinstance(entry, tuple) or len(entry) != 5:
        return False
    is_package, origin, offset, length, deferred = entry
    return (
        isinstance(is_package, bool)
        and isinstance(deferred, bool)
        and isinstance(origin, str)
        and type(offset) is int
        and type(length) is int
        and 0 <= offset <= offset + length <= limit
    )


class _Folder:
    """A package's resource reader (``importlib.resources``): its folder."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def files(self) -> "pathlib.Path":
        import pathlib

        return pathlib.Path(self.folder)


if TYPE_CHECKING:
    _Module = ModuleType
else:
    _Module = type(sys)  # types.ModuleType, without importing types


class _Pending:
    """A deferred module's state until its code has run: its namespace as it was
    made (what others set on it meanwhile is set again after its code ran, as an
    eager import would have it) and the lock its first users take."""

    __slots__ = ("lock", "made", "started")

    def __init__(self, made: dict[str, object]) -> None:
        self.lock = _thread.RLock()
        self.made = made
        self.started = False
        _PENDING.add(self)


_PENDING: "set[_Pending]" = set()  # deferred modules whose code has not finished running


def _after_fork() -> None:
    """In a child process, a lock held by a thread of its parent would never be
    released: each deferred module gets a new one (as CPython does for its import
    locks; a module whose code another thread was running stays part-made)."""
    for pending in _PENDING:
        pending.lock = _thread.RLock()


def _run_deferred(module: "ModuleType") -> None:
    """Run a deferred module's code, once. Another thread that uses the module
    meanwhile waits for it; the thread running it that comes back to it (a circular
    import) sees it part-made, as an eager import would show it. If its code fails,
    the module leaves ``sys.modules``, as a failed import does, and the error goes to
    the code that used it."""
    spec = _Module.__getattribute__(module, "__spec__")
    pending = spec.loader_state
    if type(pending) is not _Pending:
        return
    with pending.lock:
        if pending.started:
            return
        pending.started = True
        namespace = _Module.__getattribute__(module, "__dict__")
        made = pending.made
        changed = {k: v for k, v in namespace.items() if k not in made or made[k] is not v}
        try:
            exec(spec.loader.get_code(spec.name), namespace)
        except BaseException:
            if sys.modules.get(spec.name) is module:
                del sys.modules[spec.name]
            raise
        finally:
            module.__class__ = _Module
            spec.loader_state = None
            _PENDING.discard(pending)
        namespace.update(changed)


class _Deferred(_Module):
    """A module of the bundle whose code has not run yet (see the module's doc)."""

    def __getattribute__(self, attr: str) -> object:
        if attr not in ("__spec__", "__name__"):
            _run_deferred(self)
        return _Module.__getattribute__(self, attr)

    def __delattr__(self, attr: str) -> None:
        _run_deferred(self)
        _Module.__delattr__(self, attr)


class Bundle:
    """A meta path finder and loader over one bundle (an ``InspectLoader``: runpy
    and pkgutil can ask it for code)."""

    def __init__(
        self,
        index: dict[str, Entry],
        read: "Callable[[int, int], bytes | memoryview]",
    ) -> None:
        self.index = index
        self.read = read  # (offset, length) in the code area -> bytes
        self._spec = sys.modules["_frozen_importlib"].ModuleSpec

    @classmethod
    def from_bytes(cls, data: "bytes | mmap.mmap") -> "Bundle":
        index, code = unpack(data)
        return cls(index, lambda offset, length: code[offset : offset + length])

    @classmethod
    def open(cls, path: str) -> "Bundle":
        """The bundle in the file ``path``, mapped into memory: the index is read now,
        a module's code when the module is imported. The mapping outlives the file's
        descriptor (closed at once), so an application that closes every descriptor
        keeps its imports. Without the ``mmap`` module the file is read whole."""
        with open(path, "rb") as f:
            try:
                import mmap

                data: bytes | mmap.mmap = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
            except (ImportError, OSError, ValueError):  # no mmap; an empty file
                data = f.read()
        return cls.from_bytes(data)

    def find_spec(
        self, name: str, path: "object | None" = None, target: "object | None" = None
    ) -> "ModuleSpec | None":
        entry = self.index.get(name)
        if entry is None:
            return None
        is_package, origin = entry[0], entry[1]
        spec: ModuleSpec = self._spec(name, self, origin=origin, is_package=is_package)
        spec.has_location = True  # __file__ is origin
        if is_package:
            spec.submodule_search_locations = [origin.rpartition("/")[0]]
        return spec

    def create_module(self, spec: "ModuleSpec") -> None:
        return None

    def exec_module(self, module: "ModuleType") -> None:
        spec = module.__spec__
        name = module.__name__ if spec is None else spec.name
        entry = self.index.get(name)
        namespace = module.__dict__
        if (
            entry is not None
            and entry[4]
            and spec is not None
            and type(module) is _Module
            and "__builtins__" not in namespace  # a new module, not one reloaded
        ):
            spec.loader_state = _Pending(dict(namespace))
            module.__class__ = _Deferred
            return
        exec(self.get_code(name), namespace)

    def get_code(self, name: str) -> "CodeType":
        entry = self.index.get(name)
        if entry is None:
            raise ImportError(f"no module {name!r} in the bytecode bundle", name=name)
        offset, length = entry[2], entry[3]
        code: CodeType = marshal.loads(self.read(offset, length))
        return code

    def get_source(self, name: str) -> None:
        return None  # sourceless, as the .pyc files were

    def is_package(self, name: str) -> bool:
        entry = self.index.get(name)
        if entry is None:
            raise ImportError(f"no module {name!r} in the bytecode bundle", name=name)
        return entry[0]

    def get_resource_reader(self, name: str) -> "_Folder | None":
        """For ``importlib.resources``: a package's resources are the files in its
        folder, as they were when its ``.pyc`` lay there."""
        entry = self.index.get(name)
        return _Folder(entry[1].rpartition("/")[0]) if entry is not None and entry[0] else None

    def get_filename(self, name: str) -> str:
        entry = self.index.get(name)
        if entry is None:
            raise ImportError(f"no module {name!r} in the bytecode bundle", name=name)
        return entry[1]


def install(path: str = PATH, skip: "tuple[str, ...]" = ()) -> "Bundle | None":
    """Put the bundle at ``path`` first on ``sys.meta_path``; None if there is none
    (an image built with ``--vm-bytecode files``). Packages named in ``skip`` (and
    their modules) are left to the path (another program's own copy of them)."""
    try:
        bundle = Bundle.open(path)
    except FileNotFoundError:
        return None
    for name in [n for n in bundle.index if n.partition(".")[0] in skip]:
        del bundle.index[name]
    sys.meta_path.insert(0, bundle)
    import posix

    posix.register_at_fork(after_in_child=_after_fork)
    return bundle
