"""The sans-IO xenstore server: tree, permissions, transactions, watches, quotas."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from mirage.xen.xenstore import PAYLOAD_MAX, Op, Packet, Quota, XenstoreServer, join_args


class Conn:
    """One connection to a server, with helpers that return (reply, events)."""

    def __init__(self, server: XenstoreServer, domid: int = 0) -> None:
        self.server = server
        self.id = server.connect(domid)
        self.req = 0

    def send(self, op: int, payload: bytes, tx: int = 0) -> tuple[Packet, list[tuple[int, Packet]]]:
        self.req += 1
        out = self.server.handle(self.id, Packet(op, self.req, tx, payload))
        (target, reply), *rest = out
        assert target == self.id
        assert reply.req_id == self.req and reply.tx_id == tx
        return reply, rest

    def ok(self, op: int, *args: str, tx: int = 0) -> bytes:
        reply, _ = self.send(op, join_args(*args), tx)
        assert reply.op == op, reply
        return reply.payload

    def err(self, op: int, *args: str, tx: int = 0, raw: bytes | None = None) -> str:
        reply, _ = self.send(op, join_args(*args) if raw is None else raw, tx)
        assert reply.op == Op.ERROR, reply
        assert reply.payload.endswith(b"\0")
        return reply.payload[:-1].decode()

    def write(self, path: str, value: str, tx: int = 0) -> list[tuple[int, Packet]]:
        reply, events = self.send(Op.WRITE, path.encode() + b"\0" + value.encode(), tx)
        assert reply.payload == b"OK\0", reply
        return events

    def read(self, path: str, tx: int = 0) -> bytes:
        return self.ok(Op.READ, path, tx=tx)

    def start(self) -> int:
        return int(self.ok(Op.TRANSACTION_START, "")[:-1])


def events_of(out: list[tuple[int, Packet]]) -> list[tuple[int, bytes]]:
    return [(conn, p.payload) for conn, p in out if p.op == Op.WATCH_EVENT]


@pytest.fixture
def server() -> XenstoreServer:
    return XenstoreServer(Quota(entries_per_domain=10, entry_size=64, watches_per_connection=3))


def test_write_read_directory(server: XenstoreServer) -> None:
    c = Conn(server)
    c.write("/a/b/c", "x")
    assert c.read("/a/b/c") == b"x"
    assert c.read("/a/b") == b""
    assert c.ok(Op.DIRECTORY, "/a") == b"b\0"
    c.write("/a/d", "")
    assert c.ok(Op.DIRECTORY, "/a") == b"b\0d\0"
    assert c.ok(Op.DIRECTORY, "/a/b/c") == b""
    assert c.err(Op.READ, "/nope") == "ENOENT"
    assert c.err(Op.DIRECTORY, "/nope") == "ENOENT"


def test_mkdir_and_rm(server: XenstoreServer) -> None:
    c = Conn(server)
    assert c.ok(Op.MKDIR, "/m/n") == b"OK\0"
    assert c.ok(Op.MKDIR, "/m/n") == b"OK\0"
    c.write("/m/n/o", "1")
    assert c.ok(Op.RM, "/m") == b"OK\0"
    assert c.err(Op.READ, "/m/n/o") == "ENOENT"
    assert c.ok(Op.RM, "/m") == b"OK\0"  # gone, but its parent exists
    assert c.err(Op.RM, "/m/n") == "ENOENT"  # its parent is gone too
    assert c.err(Op.RM, "/") == "EINVAL"


def test_relative_paths_are_under_the_domain(server: XenstoreServer) -> None:
    c = Conn(server, domid=0)
    c.write("name", "dom0")
    assert c.read("/local/domain/0/name") == b"dom0"
    assert c.ok(Op.GET_DOMAIN_PATH, "7") == b"/local/domain/7\0"


@pytest.mark.parametrize("path", ["/a b", "/a//b", "/a/", "", "/\xe9"])
def test_bad_paths(server: XenstoreServer, path: str) -> None:
    c = Conn(server)
    assert c.err(Op.READ, raw=path.encode("latin-1") + b"\0") == "EINVAL"
    assert c.err(Op.WRITE, raw=path.encode("latin-1") + b"\0v") == "EINVAL"


def test_malformed_payloads(server: XenstoreServer) -> None:
    c = Conn(server)
    assert c.err(Op.READ, raw=b"/no-nul") == "EINVAL"
    assert c.err(Op.WRITE, raw=b"/no-separator") == "EINVAL"
    assert c.err(Op.SET_PERMS, raw=b"/x\0") == "EINVAL"
    assert c.err(Op.TRANSACTION_END, raw=b"X\0", tx=1) == "ENOENT"  # no transaction 1
    assert c.err(Op.TRANSACTION_END, raw=b"X\0", tx=c.start()) == "EINVAL"
    assert c.err(Op.INTRODUCE, raw=b"x\0") == "EINVAL"
    assert c.err(Op.WATCH, raw=b"/only-path\0") == "EINVAL"
    assert c.err(Op.WATCH_EVENT, raw=b"/x\0t\0") == "ENOSYS"  # as C xenstored
    assert c.err(Op.ERROR, raw=b"EIO\0") == "ENOSYS"
    assert c.err(99, raw=b"") == "ENOSYS"
    assert c.err(Op.CONTROL, raw=b"print") == "EINVAL"  # no terminating NUL


def test_permissions(server: XenstoreServer) -> None:
    dom0, dom5, dom6 = Conn(server), Conn(server, 5), Conn(server, 6)
    dom0.write("/local/domain/5/x", "secret")
    assert dom0.ok(Op.GET_PERMS, "/local/domain/5/x") == b"n0\0"
    assert dom5.err(Op.READ, "/local/domain/5/x") == "EACCES"
    assert dom0.ok(Op.SET_PERMS, "/local/domain/5/x", "n0", "r5") == b"OK\0"
    assert dom5.read("/local/domain/5/x") == b"secret"
    assert dom6.err(Op.READ, "/local/domain/5/x") == "EACCES"
    reply, _ = dom5.send(Op.WRITE, b"/local/domain/5/x\0mine")
    assert reply.payload == b"EACCES\0"
    # A domain owns what it creates under a directory it may write.
    dom0.ok(Op.SET_PERMS, "/local/domain/5", "n5")
    dom5.write("/local/domain/5/own", "1")
    assert dom0.ok(Op.GET_PERMS, "/local/domain/5/own") == b"n5\0"
    assert dom6.err(Op.READ, "/local/domain/5/own") == "EACCES"
    assert dom6.err(Op.SET_PERMS, "/local/domain/5/own", "b6") == "EACCES"
    assert dom5.ok(Op.SET_PERMS, "/local/domain/5/own", "n5", "b6") == b"OK\0"
    assert dom6.read("/local/domain/5/own") == b"1"
    assert dom6.err(Op.INTRODUCE, "9", "1", "1") == "EACCES"


def test_quotas(server: XenstoreServer) -> None:
    dom0, dom5 = Conn(server), Conn(server, 5)
    dom0.ok(Op.MKDIR, "/local/domain/5")
    dom0.ok(Op.SET_PERMS, "/local/domain/5", "n5")
    assert dom5.err(Op.WRITE, raw=b"big\0" + bytes(65)) == "ENOSPC"
    dom0.write("/dom0-is-unlimited", "x" * 1000)
    for i in range(9):  # the directory itself is the tenth node
        dom5.write(f"k{i}", "v")
    assert dom5.err(Op.WRITE, raw=b"k9\0v") == "ENOSPC"
    for i in range(3):
        dom5.ok(Op.WATCH, f"/w{i}", "t")
    assert dom5.err(Op.WATCH, "/w3", "t") == "E2BIG"


def test_watches(server: XenstoreServer) -> None:
    a, b = Conn(server), Conn(server)
    reply, out = a.send(Op.WATCH, join_args("/w", "tok"))
    assert reply.payload == b"OK\0"
    assert events_of(out) == [(a.id, b"/w\0tok\0")]  # the initial event
    assert b.err(Op.WATCH, raw=b"/w\0") == "EINVAL"
    assert events_of(b.write("/w/x/y", "1")) == [(a.id, b"/w/x/y\0tok\0")]
    assert events_of(b.write("/other", "1")) == []
    assert events_of(b.write("/w", "1")) == [(a.id, b"/w\0tok\0")]
    a.ok(Op.WATCH, "/w/x/y/z", "deep")
    _, out = b.send(Op.RM, join_args("/w/x"))
    assert events_of(out) == [(a.id, b"/w/x\0tok\0"), (a.id, b"/w/x/y/z\0deep\0")]
    assert a.err(Op.WATCH, "/w", "tok") == "EEXIST"
    assert a.ok(Op.UNWATCH, "/w", "tok") == b"OK\0"
    assert a.err(Op.UNWATCH, "/w", "tok") == "ENOENT"
    assert events_of(b.write("/w/q", "1")) == []
    a.ok(Op.RESET_WATCHES, "")
    _, out = b.send(Op.RM, join_args("/w"))
    assert events_of(out) == []


def test_relative_watch_reports_relative_paths(server: XenstoreServer) -> None:
    a = Conn(server, 3)
    dom0 = Conn(server)
    dom0.ok(Op.MKDIR, "/local/domain/3")
    dom0.ok(Op.SET_PERMS, "/local/domain/3", "n3")
    a.ok(Op.WATCH, "device", "d")
    assert events_of(dom0.write("/local/domain/3/device/vbd", "x")) == [(a.id, b"device/vbd\0d\0")]


def test_watch_events_respect_permissions(server: XenstoreServer) -> None:
    dom0, dom5 = Conn(server), Conn(server, 5)
    dom5.ok(Op.WATCH, "/private", "t")
    assert events_of(dom0.write("/private/x", "1")) == []
    dom0.ok(Op.SET_PERMS, "/private/x", "n0", "r5")
    assert events_of(dom0.write("/private/x", "2")) == [(dom5.id, b"/private/x\0t\0")]


def test_special_watches_and_domains(server: XenstoreServer) -> None:
    c = Conn(server)
    c.ok(Op.WATCH, "@introduceDomain", "i")
    c.ok(Op.WATCH, "@releaseDomain", "r")
    assert c.ok(Op.IS_DOMAIN_INTRODUCED, "4") == b"F\0"
    assert c.ok(Op.IS_DOMAIN_INTRODUCED, "0") == b"T\0"
    reply, out = c.send(Op.INTRODUCE, join_args("4", "1234", "5"))
    assert reply.payload == b"OK\0"
    assert events_of(out) == [(c.id, b"@introduceDomain\0i\0")]
    assert c.ok(Op.IS_DOMAIN_INTRODUCED, "4") == b"T\0"
    assert c.ok(Op.RESUME, "4") == b"OK\0"
    assert c.err(Op.SET_TARGET, "4", "5") == "ENOENT"  # domain 5 is not introduced
    assert c.ok(Op.SET_TARGET, "4", "0") == b"OK\0"
    dom4 = Conn(server, 4)
    reply, out = c.send(Op.RELEASE, join_args("4"))
    assert events_of(out) == [(c.id, b"@releaseDomain\0r\0")]
    assert c.err(Op.RELEASE, "4") == "ENOENT"
    assert c.err(Op.RESUME, "4") == "ENOENT"
    # Released domains lose their connections: their requests get nothing.
    assert server.handle(dom4.id, Packet(Op.READ, 1, 0, b"/\0")) == []
    assert server.domain_events == [("introduce", 4, 1234, 5), ("release", 4, 0, 0)]


def test_transactions(server: XenstoreServer) -> None:
    a, b = Conn(server), Conn(server)
    a.ok(Op.WATCH, "/t", "w")
    tx = a.start()
    assert a.err(Op.TRANSACTION_START, "", tx=tx) == "EBUSY"
    out = a.write("/t/x", "1", tx=tx)
    assert events_of(out) == []  # nothing fires before the commit
    assert a.read("/t/x", tx=tx) == b"1"
    assert b.err(Op.READ, "/t/x") == "ENOENT"  # isolated
    reply, out = a.send(Op.TRANSACTION_END, b"T\0", tx)
    assert reply.payload == b"OK\0"
    assert events_of(out) == [(a.id, b"/t/x\0w\0")]
    assert b.read("/t/x") == b"1"
    # Abort discards.
    tx = a.start()
    a.write("/t/y", "2", tx=tx)
    assert a.ok(Op.TRANSACTION_END, "F", tx=tx) == b"OK\0"
    assert b.err(Op.READ, "/t/y") == "ENOENT"
    assert a.err(Op.TRANSACTION_END, "T", tx=tx) == "ENOENT"
    assert a.err(Op.READ, "/t/x", tx=12345) == "ENOENT"


def test_transaction_conflict(server: XenstoreServer) -> None:
    a, b = Conn(server), Conn(server)
    a.write("/c", "0")
    tx = a.start()
    assert a.read("/c", tx=tx) == b"0"
    b.write("/c", "1")  # someone changes what the transaction read
    a.write("/c", "2", tx=tx)
    assert a.err(Op.TRANSACTION_END, "T", tx=tx) == "EAGAIN"
    assert b.read("/c") == b"1"
    # Unrelated changes do not conflict.
    tx = a.start()
    a.write("/c", "3", tx=tx)
    b.write("/unrelated", "x")
    assert a.ok(Op.TRANSACTION_END, "T", tx=tx) == b"OK\0"
    assert b.read("/c") == b"3"


def test_transaction_quota(server: XenstoreServer) -> None:
    dom5 = Conn(server, 5)
    for _ in range(Quota().transactions_per_connection):
        dom5.start()
    assert dom5.err(Op.TRANSACTION_START, "") == "ENOSPC"


def test_directory_part(server: XenstoreServer) -> None:
    c = Conn(server)
    names = [f"child-{i:04d}-" + "x" * 40 for i in range(200)]
    for name in names:
        c.ok(Op.MKDIR, f"/big/{name}")
    reply, _ = c.send(Op.DIRECTORY, b"/big\0")
    assert reply.payload == b"E2BIG\0"  # more than one message holds
    got: list[bytes] = []
    offset = 0
    gens = set()
    while True:
        part = c.ok(Op.DIRECTORY_PART, "/big", str(offset))
        gen, _, rest = part.partition(b"\0")
        gens.add(gen)
        if rest.endswith(b"\0\0") or rest == b"\0":
            got.extend(rest[:-2].split(b"\0") if rest != b"\0" else [])
            break
        got.extend(rest[:-1].split(b"\0"))
        offset += len(rest)
    assert [g.decode() for g in got] == names
    assert len(gens) == 1
    assert c.err(Op.DIRECTORY_PART, "/big", "x") == "EINVAL"


REQUESTS = st.builds(
    Packet,
    st.integers(0, 25),
    st.integers(0, 3),
    st.sampled_from([0, 0, 1, 2, 0xFFFFFFFF]),
    st.lists(
        st.sampled_from([b"/", b"/a", b"/a/b", b"a", b"@introduceDomain", b"1", b"T", b"n0", b"r1"])
        | st.binary(max_size=8),
        max_size=4,
    ).map(b"\0".join)
    | st.binary(max_size=32),
)


@settings(max_examples=300)
@given(st.lists(st.tuples(st.sampled_from([0, 1, 5]), REQUESTS), max_size=20))
def test_handle_never_raises(requests: list[tuple[int, Packet]]) -> None:
    server = XenstoreServer()
    conns = {d: server.connect(d) for d in (0, 1, 5)}
    server.handle(conns[0], Packet(Op.TRANSACTION_START, 1, 0, b"\0"))
    for domid, packet in requests:
        out = server.handle(conns[domid], packet)
        if not out:  # released
            conns[domid] = server.connect(domid)
            continue
        target, reply = out[0]
        assert target == conns[domid]
        assert reply.req_id == packet.req_id
        assert len(reply.payload) <= PAYLOAD_MAX


class TreeMachine(RuleBasedStateMachine):
    """Writes, removes and transactions against a dict of absolute paths."""

    NAMES = st.sampled_from(["a", "b", "c"])

    def __init__(self) -> None:
        super().__init__()
        self.server = XenstoreServer()
        self.c = Conn(self.server)
        self.model: dict[str, bytes] = {"/": b""}

    @staticmethod
    def path(parts: list[str]) -> str:
        return "/" + "/".join(parts)

    @rule(parts=st.lists(NAMES, min_size=1, max_size=3), value=st.binary(max_size=4))
    def write(self, parts: list[str], value: bytes) -> None:
        self.c.send(Op.WRITE, self.path(parts).encode() + b"\0" + value)
        for i in range(1, len(parts)):
            self.model.setdefault(self.path(parts[:i]), b"")
        self.model[self.path(parts)] = value

    @rule(parts=st.lists(NAMES, min_size=1, max_size=3))
    def rm(self, parts: list[str]) -> None:
        p = self.path(parts)
        reply, _ = self.c.send(Op.RM, join_args(p))
        parent = p.rsplit("/", 1)[0] or "/"
        if p not in self.model and parent not in self.model:
            assert reply.payload == b"ENOENT\0"
        else:
            assert reply.payload == b"OK\0"
        for k in [k for k in self.model if k == p or k.startswith(p + "/")]:
            del self.model[k]

    @rule(parts=st.lists(NAMES, min_size=1, max_size=3), value=st.binary(max_size=4))
    def transaction_write(self, parts: list[str], value: bytes) -> None:
        tx = self.c.start()
        self.c.send(Op.WRITE, self.path(parts).encode() + b"\0" + value, tx)
        assert self.c.ok(Op.TRANSACTION_END, "T", tx=tx) == b"OK\0"
        for i in range(1, len(parts)):
            self.model.setdefault(self.path(parts[:i]), b"")
        self.model[self.path(parts)] = value

    @invariant()
    def same_tree(self) -> None:
        assert {p: n.value for p, n in self.server.tree.items()} == self.model
        for p, node in self.server.tree.items():
            prefix = "" if p == "/" else p
            assert sorted(node.children) == sorted(
                k[len(prefix) + 1 :]
                for k in self.model
                if k != "/" and k.rsplit("/", 1)[0] == prefix
            )


TreeMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=20, deadline=None)
test_tree_machine = TreeMachine.TestCase


def test_control(server: XenstoreServer) -> None:
    """XS_CONTROL as C xenstored answers its common commands."""
    c = Conn(server)
    assert c.ok(Op.CONTROL, "check") == b"OK\0"
    assert c.ok(Op.CONTROL, "print", "hello") == b"OK\0"
    assert server.log == ["hello"]
    assert c.ok(Op.CONTROL, "log", "on") == b"OK\0"
    help_text = c.ok(Op.CONTROL, "help")
    assert help_text.endswith(b"\n\0") and b"check" in help_text and b"print" in help_text
    assert b"nodes" in c.ok(Op.CONTROL, "quota")
    assert c.err(Op.CONTROL, "check", "extra") == "EINVAL"
    assert c.err(Op.CONTROL, "print") == "EINVAL"
    assert c.err(Op.CONTROL, "no-such-command") == "EINVAL"
    assert c.err(Op.CONTROL, raw=b"") == "EINVAL"
    assert Conn(server, 5).err(Op.CONTROL, "check") == "EACCES"
    # check repairs a child list that lost a node.
    c.write("/a/b", "1")
    server.tree["/a"] = server.tree["/a"].__class__(b"", server.tree["/a"].perms, ("b", "ghost"))
    assert c.ok(Op.CONTROL, "check") == b"OK\0"
    assert c.ok(Op.DIRECTORY, "/a") == b"b\0"


def test_set_target(server: XenstoreServer) -> None:
    """A domain given a target acts as it: the target's nodes and ACL entries."""
    dom0 = Conn(server)
    for d in ("3", "4"):
        dom0.ok(Op.INTRODUCE, d, "1", "1")
    dom0.write("/local/domain/3/owned", "x")
    dom0.ok(Op.SET_PERMS, "/local/domain/3/owned", "n3")
    dom0.write("/shared", "y")
    dom0.ok(Op.SET_PERMS, "/shared", "n0", "r3")
    stub = Conn(server, 4)
    assert stub.err(Op.READ, "/local/domain/3/owned") == "EACCES"
    assert stub.err(Op.READ, "/shared") == "EACCES"
    assert stub.err(Op.SET_TARGET, "4", "3") == "EACCES"  # only dom0 may
    assert dom0.err(Op.SET_TARGET, "4", "9") == "ENOENT"
    assert dom0.err(Op.SET_TARGET, "4") == "EINVAL"
    assert dom0.ok(Op.SET_TARGET, "4", "3") == b"OK\0"
    assert stub.read("/local/domain/3/owned") == b"x"
    stub.write("/local/domain/3/owned", "z")
    assert stub.read("/shared") == b"y"
    assert stub.err(Op.WRITE, raw=b"/shared\0no") == "EACCES"  # r3 only
    dom0.ok(Op.RELEASE, "3")
    assert server.targets == {}


def test_request_checks_in_c_xenstoreds_order(server: XenstoreServer) -> None:
    """Before its arguments: the type (ENOSYS), privilege (EACCES), then the
    transaction id (ENOENT; WATCH and UNWATCH ignore it)."""
    dom0, guest = Conn(server), Conn(server, 5)
    for op in (Op.INTRODUCE, Op.RELEASE, Op.IS_DOMAIN_INTRODUCED, Op.RESUME, Op.SET_TARGET):
        assert guest.err(op, raw=b"garbage") == "EACCES"
    assert guest.err(Op.CONTROL, raw=b"") == "EACCES"
    assert dom0.err(Op.GET_DOMAIN_PATH, "3", tx=77) == "ENOENT"
    assert dom0.err(Op.TRANSACTION_START, "", tx=77) == "ENOENT"  # EBUSY only if it exists
    assert dom0.err(Op.RESET_WATCHES, "", tx=77) == "ENOENT"
    assert dom0.ok(Op.WATCH, "/w", "t", tx=77) == b"OK\0"
    assert dom0.ok(Op.UNWATCH, "/w", "t", tx=77) == b"OK\0"
    assert dom0.err(99, raw=b"", tx=77) == "ENOSYS"
