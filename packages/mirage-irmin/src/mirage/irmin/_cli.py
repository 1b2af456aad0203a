"""``irmin``: the store from the command line.

``irmin [-C repo] [-b branch] init|get|set|remove|list|log|branch|merge|clone|pull|push``.
The repository is a Git directory (bare, or a work tree's ``.git``); commits are
dated with the host's clock and signed with ``--author``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from ._errors import IrminError
from ._git import GitBackend
from ._merge import conflict, counter, json_object, line_set, ours, theirs
from ._remote import fetch_remote, push_remote
from ._repo import Info, Repo
from ._store import Store
from ._sync import clone

__all__ = ["main"]

MERGES = {
    "conflict": conflict,
    "ours": ours,
    "theirs": theirs,
    "counter": counter,
    "lines": line_set,
    "json": json_object,
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="irmin", description="A Git-compatible versioned store.")
    p.add_argument("-C", dest="repo", default=".", help="the repository (default: .)")
    p.add_argument("-b", "--branch", default="main", help="the branch (default: main)")
    p.add_argument("--author", default="irmin <irmin@localhost>", help="'Name <email>'")
    p.add_argument("-m", "--message", default=None, help="the commit message")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("init", help="create a bare repository")
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
    for name in ("pull", "push"):
        r = sub.add_parser(name, help=f"{name} the branch (path, git:// or http:// remote)")
        r.add_argument("remote")
    return p


def _info(args: argparse.Namespace, default: str) -> Info:
    name, _, email = args.author.partition(" <")
    return Info(
        int(time.time()), args.message or default, name, email.rstrip(">") or "irmin@localhost"
    )


def run(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    if args.command == "init":
        GitBackend.init(args.repo, branch=args.branch)
        return 0
    if args.command == "clone":
        clone(args.source, args.dest)
        return 0
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
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except IrminError as e:
        print(f"irmin: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
