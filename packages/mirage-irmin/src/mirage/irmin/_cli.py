"""``irmin``: the store from the command line.

``irmin [-C repo] [-b branch]
init|get|set|remove|list|log|branch|merge|clone|pull|push|watch|serve|gc``.
The repository is a Git directory (bare, or a work tree's ``.git``); commits are
dated with the host's clock and signed with ``--author``.
"""

from __future__ import annotations

import argparse
import contextlib
import select
import sys
import time
from collections.abc import Sequence

from ._errors import IrminError
from ._git import GitBackend
from ._inotify import RefNotifier
from ._merge import MERGES
from ._packbackend import PackBackend
from ._remote import fetch_remote, push_remote
from ._repo import Info, Repo
from ._store import Store
from ._sync import clone
from ._watch import RefPoller

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="irmin", description="A Git-compatible versioned store.")
    p.add_argument("-C", dest="repo", default=".", help="the repository (default: .)")
    p.add_argument("-b", "--branch", default="main", help="the branch (default: main)")
    p.add_argument("--author", default="irmin <irmin@localhost>", help="'Name <email>'")
    p.add_argument("-m", "--message", default=None, help="the commit message")
    sub = p.add_subparsers(dest="command", required=True)
    i = sub.add_parser("init", help="create a bare repository")
    i.add_argument("--pack", action="store_true", help="a pack backend, not a Git repository")
    sub.add_parser("get", help="print a value").add_argument("key")
    s = sub.add_parser("set", help="set a value (from standard input if none is given)")
    s.add_argument("key")
    s.add_argument("value", nargs="?")
    sub.add_parser("remove", help="remove a value or a tree").add_argument("key")
    sub.add_parser("list", help="list a tree").add_argument("key", nargs="?", default="")
    sub.add_parser("log", help="the branch's history").add_argument("-n", type=int, default=None)
    sub.add_parser("branch", help="list branches, or create one").add_argument("name", nargs="?")
    m = sub.add_parser("merge", help="merge a branch into this one")
    m.add_argument("other")
    m.add_argument("--strategy", choices=sorted(MERGES), default="conflict")
    c = sub.add_parser("clone", help="copy a repository")
    c.add_argument("source")
    c.add_argument("dest")
    c.add_argument("--pack", action="store_true", help="make dest a pack backend")
    for name in ("pull", "push"):
        r = sub.add_parser(name, help=f"{name} the branch (path, git:// or http:// remote)")
        r.add_argument("remote")
    w = sub.add_parser("watch", help="print 'old new' ids each time the branch (or a key) moves")
    w.add_argument("key", nargs="?", default=None)
    w.add_argument("--interval", type=float, default=1.0, help="seconds between looks")
    w.add_argument("--count", type=int, default=None, help="stop after this many changes")
    w.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    sub.add_parser("gc", help="repack every object into one pack, with deltas for history")
    v = sub.add_parser("serve", help="serve the store over HTTP (REST/JSON)")
    v.add_argument("--host", default="127.0.0.1")
    v.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    v.add_argument("--poll", type=float, default=0.5, help="seconds between looks at refs")
    return p


def _watch(store: Store, args: argparse.Namespace) -> None:
    changes = 0
    out = sys.stdout

    def show(old: bytes | None, new: bytes | None) -> None:
        nonlocal changes
        changes += 1
        print(f"{old.hex() if old else '-'} {new.hex() if new else '-'}", file=out, flush=True)

    if args.key is None:
        store.watch(show)
    else:
        store.watch_key(args.key, show)
    start = time.monotonic()
    poller = RefPoller(store.repo, args.interval, start)
    notifier: RefNotifier | None = None
    with contextlib.suppress(OSError):
        notifier = RefNotifier(store.repo)  # woken by inotify; polling without it
    print("watching", file=out, flush=True)
    while args.count is None or changes < args.count:
        now = time.monotonic()
        if args.timeout is not None and now - start >= args.timeout:
            break
        if notifier is not None:
            wait = args.interval
            if args.timeout is not None:
                wait = min(wait, max(0.0, start + args.timeout - now))
            readable, _, _ = select.select([notifier], [], [], wait)
            if not (readable and notifier.handle_readable()):
                store.repo.poll()  # every interval all the same, as a safety net
        elif not poller.handle_timer(now):
            time.sleep(max(0.0, min(poller.get_timer() - now, args.interval)))
    if notifier is not None:
        notifier.close()


def _serve(repo: Repo, args: argparse.Namespace) -> None:
    import asyncio

    from ._server import StoreServer

    async def serve() -> None:
        server = StoreServer(repo, poll_interval=args.poll)
        host, port = await server.start(args.host, args.port)
        print(f"serving http://{host}:{port}", flush=True)
        try:
            await server.serve_forever()
        finally:
            await server.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


def _info(args: argparse.Namespace, default: str) -> Info:
    name, _, email = args.author.partition(" <")
    return Info(
        int(time.time()), args.message or default, name, email.rstrip(">") or "irmin@localhost"
    )


def run(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    if args.command == "init":
        if args.pack:
            PackBackend(args.repo, head=f"refs/heads/{args.branch}").close()
        else:
            GitBackend.init(args.repo, branch=args.branch)
        return 0
    if args.command == "clone":
        clone(args.source, args.dest, pack=args.pack)
        return 0
    backend: GitBackend | PackBackend
    if PackBackend.is_pack(args.repo):
        backend = PackBackend(args.repo)
    else:
        backend = GitBackend.open(args.repo)
    store = Store(Repo(backend), args.branch)
    out = sys.stdout
    if args.command == "get":
        sys.stdout.buffer.write(store.get(args.key))
    elif args.command == "set":
        value = args.value.encode() if args.value is not None else sys.stdin.buffer.read()
        store.set(args.key, value, _info(args, f"set {args.key}"))
    elif args.command == "remove":
        store.remove(args.key, _info(args, f"remove {args.key}"))
    elif args.command == "list":
        for name, kind in store.list(args.key):
            print(f"{name}/" if kind == "node" else name, file=out)
    elif args.command == "log":
        for oid in store.history(None)[: args.n]:
            c = store.repo.read_commit(oid)
            print(
                f"{oid.hex()} {c.author.time} {c.message.splitlines()[0] if c.message else ''}",
                file=out,
            )
    elif args.command == "branch":
        if args.name:
            store.clone(args.name)
        for name in backend.list_refs("refs/heads/"):
            print(name.removeprefix("refs/heads/"), file=out)
    elif args.command == "merge":
        store.merge_with_branch(
            args.other, _info(args, f"merge {args.other}"), MERGES[args.strategy]
        )
    elif args.command == "pull":
        got = fetch_remote(
            args.remote,
            backend,
            {f"refs/heads/{args.branch}": "refs/remotes/origin/" + args.branch},
        )
        store.merge_with_commit(next(iter(got.values())), _info(args, f"merge {args.remote}"))
    elif args.command == "push":
        push_remote(backend, args.remote, args.branch)
    elif args.command == "watch":
        _watch(store, args)
    elif args.command == "gc":
        from ._repack import repack

        if isinstance(backend, PackBackend):
            raise IrminError("gc repacks Git repositories; a pack backend is one file already")
        st = repack(backend)
        print(
            f"{st.objects} objects, {st.pack_bytes} bytes in one pack "
            f"(replaced {st.replaced_packs} packs, {st.replaced_loose} loose objects)",
            file=out,
        )
    elif args.command == "serve":
        _serve(store.repo, args)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except IrminError as e:
        print(f"irmin: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
