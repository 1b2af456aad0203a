"""The xenstore server core (sans-IO).

Theory of operation. The store is a tree of nodes, each with a value, an ACL and
a list of children, kept as a flat ``{absolute path: Node}`` dict of immutable
nodes. A connection (one per socket client or domain ring) has a domain id; domain
0 is privileged. :meth:`XenstoreServer.handle` takes one request of one connection
and returns what to send: the reply to that connection first, then watch events,
which may be for any connection.

Every committed change bumps a global generation and records it against each path
it touched (the node and the parent whose children changed). A transaction works on
a shallow copy of the tree taken at its start and remembers every path it read or
wrote; at commit it conflicts (``EAGAIN``) if any of those paths changed after its
start, otherwise its writes are copied into the tree and their watches fire.

Watches match the changed path and its descendants; removing a node also fires
watches set below it, with the watch's own path. A new watch fires once at once.
``@introduceDomain`` and ``@releaseDomain`` fire on domain introduction and
release. Quotas bound what an unprivileged domain may hold.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

from ._wire import (
    PAYLOAD_MAX,
    Op,
    Packet,
    Perm,
    XsError,
    decode_perms,
    encode_perms,
    join_args,
    split_args,
    valid_path,
)

__all__ = ["Node", "Quota", "XenstoreServer"]

Output = tuple[int, Packet]


@dataclass(frozen=True, slots=True)
class Node:
    """A node of the store: its value, permissions and children's names."""

    value: bytes
    perms: tuple[Perm, ...]
    children: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Quota:
    """Limits for unprivileged domains (domain 0 has none)."""

    entries_per_domain: int = 1000
    entry_size: int = 2048
    watches_per_connection: int = 128
    transactions_per_connection: int = 10


@dataclass(slots=True)
class _Transaction:
    """An open transaction: a copy of the tree, the paths it read and wrote, and its events."""

    start_gen: int
    tree: dict[str, Node]
    accessed: set[str] = field(default_factory=set)
    written: dict[str, None] = field(default_factory=dict)  # ordered set
    events: list[tuple[str, bool]] = field(default_factory=list)


@dataclass(slots=True)
class _Watch:
    """A watch a connection set: its path and token."""

    path: str  # as given by the client (relative or absolute)
    absolute: str
    token: bytes


@dataclass(slots=True)
class _Connection:
    """A client connection: its domain, watches and open transactions."""

    domid: int
    watches: list[_Watch] = field(default_factory=list)
    transactions: dict[int, _Transaction] = field(default_factory=dict)


def parent_of(path: str) -> str:
    head = path.rsplit("/", 1)[0]
    return head or "/"


def basename(path: str) -> str:
    return path.rsplit("/", 1)[1]


def is_below(path: str, top: str) -> bool:
    """``path`` is ``top`` or one of its descendants."""
    return top in (path, "/") or path.startswith(top + "/")


class XenstoreServer:
    def __init__(self, quota: Quota | None = None) -> None:
        self.quota = quota or Quota()
        self.tree: dict[str, Node] = {"/": Node(b"", (Perm("n", 0),))}
        self.gen = 0
        self.changed: dict[str, int] = {}
        self.introduced: dict[int, tuple[int, int]] = {}
        self.targets: dict[int, int] = {}
        self.log: list[str] = []
        """What ``XS_CONTROL print`` asked to log (the daemon logs and empties it)."""
        self.domain_events: list[tuple[str, int, int, int]] = []
        """``("introduce", domid, mfn, port)`` and ``("release", domid, 0, 0)``, for the
        driver to connect or drop the domain's ring; the driver empties it."""
        self._conns: dict[int, _Connection] = {}
        self._conn_ids = itertools.count(1)
        self._tx_ids = itertools.count(1)

    # -- connections ------------------------------------------------------------

    def connect(self, domid: int = 0) -> int:
        """A new connection for domain ``domid``; returns its id."""
        conn = next(self._conn_ids)
        self._conns[conn] = _Connection(domid)
        return conn

    def disconnect(self, conn: int) -> None:
        """Forget a connection, its watches and open transactions."""
        self._conns.pop(conn, None)

    def domid(self, conn: int) -> int:
        return self._conns[conn].domid

    # -- requests ---------------------------------------------------------------

    def handle(self, conn: int, request: Packet) -> list[Output]:
        """Answer one request of ``conn``; never raises for bad input. A connection
        that is gone (its domain released) gets nothing."""
        c = self._conns.get(conn)
        if c is None:
            return []
        outputs: list[Output] = []
        try:
            payload = self._dispatch(conn, c, request, outputs)
        except XsError as err:
            return [(conn, Packet.error(request, err.name))]
        reply = Packet.reply(request, payload)
        if len(reply.payload) > PAYLOAD_MAX:
            return [(conn, Packet.error(request, "E2BIG"))]
        return [(conn, reply), *outputs]

    def _dispatch(self, conn: int, c: _Connection, req: Packet, outputs: list[Output]) -> bytes:
        op = req.op
        # The checks C xenstored makes for every request, in its order: a type it
        # does not serve, a privileged type from a guest, an unknown transaction.
        if op not in _SERVED:
            raise XsError("ENOSYS")
        if op in _PRIVILEGED and c.domid != 0:
            raise XsError("EACCES")
        if req.tx_id and op not in _NO_TRANSACTION and req.tx_id not in c.transactions:
            raise XsError("ENOENT")
        if op == Op.TRANSACTION_START:
            return self._tx_start(c, req)
        if op == Op.TRANSACTION_END:
            return self._tx_end(c, req, outputs)
        if op == Op.WATCH:
            return self._watch(conn, c, req, outputs)
        if op == Op.UNWATCH:
            return self._unwatch(c, req)
        if op == Op.RESET_WATCHES:
            c.watches.clear()
            return b"OK\0"
        if op == Op.CONTROL:
            return self._control(c, req)
        if op in _DOMAIN_OPS:
            return self._domain_op(c, req, outputs)
        if op not in _TREE_OPS:  # pragma: no cover - _SERVED is exhaustive
            raise XsError("ENOSYS")
        tx: _Transaction | None = None
        if req.tx_id:
            tx = c.transactions.get(req.tx_id)
            if tx is None:
                raise XsError("ENOENT")
        # Checks come before changes, so a failed request changes nothing.
        tree = tx.tree if tx is not None else self.tree
        events: list[tuple[str, bool]] = []
        touched: list[str] = []
        payload = self._tree_op(c, req, tree, events=events, touched=touched, tx=tx)
        if tx is not None:
            tx.accessed.update(touched)
            if op in _WRITE_OPS:
                tx.written.update(dict.fromkeys(touched))
                tx.events.extend(events)
        elif op in _WRITE_OPS:
            self._commit(touched)
            outputs.extend(self._fire(events))
        return payload

    # -- tree operations ------------------------------------------------------

    def _path(self, c: _Connection, raw: bytes) -> str:
        try:
            path = raw.decode("ascii")
        except UnicodeDecodeError:
            raise XsError("EINVAL") from None
        if not valid_path(path) or path.startswith("@"):
            raise XsError("EINVAL")
        if not path.startswith("/"):
            path = f"/local/domain/{c.domid}/{path}"
        return path

    def _perm(self, c: _Connection, node: Node) -> Perm:
        domid = c.domid
        if domid == 0:
            return Perm("b", 0)
        # A domain given a target (SET_TARGET, e.g. a device model's stub domain)
        # acts as that target too: its ownership and its ACL entries.
        me = (domid, self.targets.get(domid, -1))
        owner = node.perms[0]
        if owner.domid in me:
            return Perm("b", domid)
        for p in node.perms[1:]:
            if p.domid in me:
                return Perm(p.kind, domid)
        return Perm(owner.kind, domid)

    def _readable(self, c: _Connection, tree: dict[str, Node], path: str) -> Node:
        node = tree.get(path)
        if node is None:
            raise XsError("ENOENT")
        if not self._perm(c, node).can_read:
            raise XsError("EACCES")
        return node

    def _tree_op(
        self,
        c: _Connection,
        req: Packet,
        tree: dict[str, Node],
        *,
        events: list[tuple[str, bool]],
        touched: list[str],
        tx: _Transaction | None,
    ) -> bytes:
        op = req.op
        if op == Op.WRITE:
            raw, value = split_args(req.payload, 2)
            path = self._path(c, raw)
            if c.domid and len(value) > self.quota.entry_size:
                raise XsError("ENOSPC")
            self._write(c, tree, path, value, touched)
            events.append((path, False))
            return b"OK\0"
        args = split_args(req.payload)
        path = self._path(c, args[0])
        touched.append(path)
        if op == Op.READ:
            return self._readable(c, tree, path).value
        if op == Op.DIRECTORY:
            return join_args(*self._readable(c, tree, path).children)
        if op == Op.DIRECTORY_PART:
            if len(args) != 2 or not args[1].isdigit():
                raise XsError("EINVAL")
            return self._directory_part(c, tree, path, int(args[1]))
        if op == Op.GET_PERMS:
            return encode_perms(self._readable(c, tree, path).perms)
        if op == Op.MKDIR:
            if path not in tree:
                self._write(c, tree, path, b"", touched)
                events.append((path, False))
            return b"OK\0"
        if op == Op.RM:
            self._rm(c, tree, path, touched)
            events.append((path, True))
            return b"OK\0"
        if op == Op.SET_PERMS:
            perms = decode_perms(args[1:])
            node = tree.get(path)
            if node is None:
                raise XsError("ENOENT")
            if not self._perm(c, node).can_write or (
                c.domid and node.perms[0].domid != c.domid and perms[0].domid != node.perms[0].domid
            ):
                raise XsError("EACCES")
            tree[path] = replace(node, perms=perms)
            events.append((path, False))
            return b"OK\0"
        raise XsError("ENOSYS")  # pragma: no cover - _TREE_OPS is exhaustive

    def _write(
        self, c: _Connection, tree: dict[str, Node], path: str, value: bytes, touched: list[str]
    ) -> None:
        node = tree.get(path)
        if node is not None:
            if not self._perm(c, node).can_write:
                raise XsError("EACCES")
            tree[path] = replace(node, value=value)
            touched.append(path)
            return
        # Create the node and any missing parents, with the nearest existing
        # ancestor's ACL, owned by the writer if it is unprivileged.
        missing = [path]
        while parent_of(missing[-1]) not in tree:
            missing.append(parent_of(missing[-1]))
        ancestor = tree[parent_of(missing[-1])]
        if not self._perm(c, ancestor).can_write:
            raise XsError("EACCES")
        perms = ancestor.perms
        if c.domid:
            perms = (Perm(perms[0].kind, c.domid), *(p for p in perms[1:] if p.domid != c.domid))
            owned = sum(1 for n in tree.values() if n.perms[0].domid == c.domid)
            if owned + len(missing) > self.quota.entries_per_domain:
                raise XsError("ENOSPC")
        for p in reversed(missing):
            parent = parent_of(p)
            pnode = tree[parent]
            tree[parent] = replace(pnode, children=(*pnode.children, basename(p)))
            tree[p] = Node(b"", perms)
            touched.extend((parent, p))
        tree[path] = replace(tree[path], value=value)

    def _rm(self, c: _Connection, tree: dict[str, Node], path: str, touched: list[str]) -> None:
        if path == "/":
            raise XsError("EINVAL")
        node = tree.get(path)
        parent = parent_of(path)
        if node is None:
            if parent not in tree:
                raise XsError("ENOENT")
            return
        pnode = tree[parent]
        if not self._perm(c, pnode).can_write and not self._perm(c, node).can_write:
            raise XsError("EACCES")
        stack = [path]
        while stack:
            p = stack.pop()
            gone = tree.pop(p)
            touched.append(p)
            stack.extend(f"{p}/{child}" for child in gone.children)
        name = basename(path)
        tree[parent] = replace(pnode, children=tuple(ch for ch in pnode.children if ch != name))
        touched.append(parent)

    def _directory_part(self, c: _Connection, tree: dict[str, Node], path: str, off: int) -> bytes:
        node = self._readable(c, tree, path)
        gen = str(self.changed.get(path, 0)).encode() + b"\0"
        children = join_args(*node.children)
        if off > len(children):
            raise XsError("EINVAL")
        room = PAYLOAD_MAX - len(gen) - 1
        rest = children[off:]
        if len(rest) <= room:
            return gen + rest + b"\0"
        cut = rest.rfind(b"\0", 0, room) + 1
        if cut == 0:
            raise XsError("E2BIG")
        return gen + rest[:cut]

    def _commit(self, touched: list[str]) -> None:
        self.gen += 1
        for path in touched:
            self.changed[path] = self.gen

    # -- transactions -----------------------------------------------------------

    def _tx_start(self, c: _Connection, req: Packet) -> bytes:
        if req.tx_id:
            raise XsError("EBUSY")
        if c.domid and len(c.transactions) >= self.quota.transactions_per_connection:
            raise XsError("ENOSPC")
        tx_id = next(self._tx_ids) & 0xFFFFFFFF or next(self._tx_ids)
        c.transactions[tx_id] = _Transaction(self.gen, dict(self.tree))
        return str(tx_id).encode() + b"\0"

    def _tx_end(self, c: _Connection, req: Packet, outputs: list[Output]) -> bytes:
        args = split_args(req.payload)
        if args not in ([b"T"], [b"F"]):
            raise XsError("EINVAL")
        tx = c.transactions.pop(req.tx_id, None)
        if tx is None:
            raise XsError("ENOENT")
        if args == [b"F"]:
            return b"OK\0"
        if any(self.changed.get(p, 0) > tx.start_gen for p in tx.accessed):
            raise XsError("EAGAIN")
        if tx.written:
            for path in tx.written:
                node = tx.tree.get(path)
                if node is None:
                    self.tree.pop(path, None)
                else:
                    self.tree[path] = node
            self._commit(list(tx.written))
            outputs.extend(self._fire(tx.events))
        return b"OK\0"

    # -- watches ------------------------------------------------------------------

    def _watch_path(self, c: _Connection, raw: bytes) -> str:
        try:
            path = raw.decode("ascii")
        except UnicodeDecodeError:
            raise XsError("EINVAL") from None
        if path in ("@introduceDomain", "@releaseDomain"):
            return path
        return self._path(c, raw)

    def _watch(self, conn: int, c: _Connection, req: Packet, outputs: list[Output]) -> bytes:
        args = split_args(req.payload)
        if len(args) != 2:
            raise XsError("EINVAL")
        absolute = self._watch_path(c, args[0])
        path, token = args[0].decode("ascii"), args[1]
        if any(w.path == path and w.token == token for w in c.watches):
            raise XsError("EEXIST")
        if c.domid and len(c.watches) >= self.quota.watches_per_connection:
            raise XsError("E2BIG")
        c.watches.append(_Watch(path, absolute, token))
        outputs.append((conn, _event(path, token)))
        return b"OK\0"

    def _unwatch(self, c: _Connection, req: Packet) -> bytes:
        args = split_args(req.payload)
        if len(args) != 2:
            raise XsError("EINVAL")
        path = args[0].decode("ascii", "replace")
        for i, w in enumerate(c.watches):
            if w.path == path and w.token == args[1]:
                del c.watches[i]
                return b"OK\0"
        raise XsError("ENOENT")

    def _fire(self, events: list[tuple[str, bool]]) -> list[Output]:
        out: list[Output] = []
        for path, recursive in events:
            for conn, c in self._conns.items():
                for w in c.watches:
                    if is_below(path, w.absolute):
                        shown = path
                    elif recursive and is_below(w.absolute, path):
                        shown = w.absolute
                    else:
                        continue
                    if c.domid and not self._may_see(c, shown):
                        continue
                    if not w.path.startswith("/") and not w.path.startswith("@"):
                        shown = shown[len(f"/local/domain/{c.domid}/") :]
                    out.append((conn, _event(shown, w.token)))
        return out

    def _may_see(self, c: _Connection, path: str) -> bool:
        while path not in self.tree:
            path = parent_of(path)
        return self._perm(c, self.tree[path]).can_read

    def _fire_special(self, name: str) -> list[Output]:
        return [
            (conn, _event(w.path, w.token))
            for conn, c in self._conns.items()
            for w in c.watches
            if w.absolute == name
        ]

    # -- control ------------------------------------------------------------------

    def _control(self, c: _Connection, req: Packet) -> bytes:
        """``XS_CONTROL`` as C xenstored answers its common commands: dom0 only
        (``EACCES``), an unknown command or wrong arguments ``EINVAL``."""
        if c.domid != 0:
            raise XsError("EACCES")
        args = split_args(req.payload)
        cmd, params = args[0], args[1:]
        if cmd == b"check":
            if params:
                raise XsError("EINVAL")
            self.check()
            return b"OK\0"
        if cmd == b"print":
            if len(params) != 1:
                raise XsError("EINVAL")
            self.log.append(params[0].decode("utf-8", "replace"))
            return b"OK\0"
        if cmd == b"log":
            if params not in ([b"on"], [b"off"]):
                raise XsError("EINVAL")
            return b"OK\0"
        if cmd == b"quota":
            if params:
                raise XsError("EINVAL")
            q = self.quota
            lines = (
                f"{'nodes':<17}: {q.entries_per_domain:8} nodes per domain\n"
                f"{'node-size':<17}: {q.entry_size:8} bytes of a node's value\n"
                f"{'watches':<17}: {q.watches_per_connection:8} watches per connection\n"
                f"{'transactions':<17}: {q.transactions_per_connection:8} transactions"
                " per connection\n"
            )
            return lines.encode() + b"\0"
        if cmd == b"help":
            text = "".join(f"{name:<15} {pars}\n" for name, pars in _CONTROL_HELP)
            return text.encode() + b"\0"
        raise XsError("EINVAL")

    def check(self) -> None:
        """The tree's consistency (``XS_CONTROL check``): every child listed exists and
        every node but the root is listed by its parent; repaired where not."""
        for path in list(self.tree):
            node = self.tree.get(path)
            if node is None:
                continue
            present = tuple(ch for ch in node.children if f"{path.rstrip('/')}/{ch}" in self.tree)
            if present != node.children:
                self.tree[path] = replace(node, children=present)
        for path in list(self.tree):
            if path == "/":
                continue
            parent = parent_of(path)
            pnode = self.tree.get(parent)
            if pnode is None:
                del self.tree[path]
            elif basename(path) not in pnode.children:
                self.tree[parent] = replace(pnode, children=(*pnode.children, basename(path)))

    # -- domains --------------------------------------------------------------------

    def _domain_op(self, c: _Connection, req: Packet, outputs: list[Output]) -> bytes:
        args = split_args(req.payload)
        if not args[0].isdigit() or int(args[0]) > 0xFFFF:
            raise XsError("EINVAL")
        domid = int(args[0])
        op = req.op
        if op == Op.GET_DOMAIN_PATH:
            return f"/local/domain/{domid}".encode() + b"\0"
        if op == Op.IS_DOMAIN_INTRODUCED:
            return b"T\0" if domid == 0 or domid in self.introduced else b"F\0"
        if c.domid != 0:
            raise XsError("EACCES")
        if op == Op.INTRODUCE:
            if len(args) < 3 or not all(a.isdigit() for a in args[1:3]) or domid == 0:
                raise XsError("EINVAL")
            self.introduced[domid] = (int(args[1]), int(args[2]))
            self.domain_events.append(("introduce", domid, int(args[1]), int(args[2])))
            outputs.extend(self._fire_special("@introduceDomain"))
            return b"OK\0"
        if op == Op.RELEASE:
            if self.introduced.pop(domid, None) is None:
                raise XsError("ENOENT")
            self.targets.pop(domid, None)
            for d in [k for k, t in self.targets.items() if t == domid]:
                del self.targets[d]
            for conn in [k for k, v in self._conns.items() if v.domid == domid]:
                self.disconnect(conn)
            self.domain_events.append(("release", domid, 0, 0))
            outputs.extend(self._fire_special("@releaseDomain"))
            return b"OK\0"
        if op == Op.RESUME:
            if domid not in self.introduced:
                raise XsError("ENOENT")
            return b"OK\0"
        # SET_TARGET: both domains must be known (as C xenstored's
        # find_connected_domain); domain 0 always is.
        if len(args) < 2 or not args[1].isdigit() or int(args[1]) > 0xFFFF:
            raise XsError("EINVAL")
        target = int(args[1])
        for d in (domid, target):
            if d != 0 and d not in self.introduced:
                raise XsError("ENOENT")
        self.targets[domid] = target
        return b"OK\0"


def _event(path: str, token: bytes) -> Packet:
    return Packet(Op.WATCH_EVENT, 0, 0, join_args(path, token))


_CONTROL_HELP = (
    ("check", ""),
    ("log", "[on|off]"),
    ("print", "<string>"),
    ("quota", ""),
    ("help", ""),
)

_TREE_OPS = frozenset(
    {
        Op.READ,
        Op.DIRECTORY,
        Op.DIRECTORY_PART,
        Op.GET_PERMS,
        Op.WRITE,
        Op.MKDIR,
        Op.RM,
        Op.SET_PERMS,
    }
)
_WRITE_OPS = frozenset({Op.WRITE, Op.MKDIR, Op.RM, Op.SET_PERMS})
_DOMAIN_OPS = frozenset(
    {
        Op.INTRODUCE,
        Op.RELEASE,
        Op.GET_DOMAIN_PATH,
        Op.IS_DOMAIN_INTRODUCED,
        Op.RESUME,
        Op.SET_TARGET,
    }
)
_PRIVILEGED = frozenset(
    {
        Op.CONTROL,
        Op.INTRODUCE,
        Op.RELEASE,
        Op.IS_DOMAIN_INTRODUCED,
        Op.RESUME,
        Op.SET_TARGET,
    }
)
_NO_TRANSACTION = frozenset({Op.WATCH, Op.UNWATCH})
_SERVED = (
    _TREE_OPS
    | _DOMAIN_OPS
    | {
        Op.CONTROL,
        Op.TRANSACTION_START,
        Op.TRANSACTION_END,
        Op.WATCH,
        Op.UNWATCH,
        Op.RESET_WATCHES,
    }
)
