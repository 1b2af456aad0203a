"""The ``mirage-dns`` command: ``serve ZONEFILE...`` and ``query NAME [TYPE] [@server]``."""

from __future__ import annotations

import argparse
import asyncio
import sys

from ._consts import type_from_text
from ._errors import DnsError
from ._name import Name

__all__ = ["main"]


async def _serve(args: argparse.Namespace) -> None:
    from mirage.unix.stack import SocketStack

    from .server import serve

    stack = await SocketStack.connect(ipv4=args.address)
    from ._server import CACHE_SIZE
    from ._tsig import parse_key

    keys = [parse_key(text) for text in args.tsig_key]
    cache_size = 0 if args.no_response_cache else CACHE_SIZE
    server = await serve(stack, args.zones, args.port, tsig_keys=keys, cache_size=cache_size)
    zones = ", ".join(str(z.origin) for z in server.authority.zones.values())
    print(f"mirage-dns: serving {zones} on {args.address} port {args.port}", flush=True)
    await asyncio.Event().wait()


async def _query(args: argparse.Namespace) -> int:
    from mirage.unix.stack import SocketStack

    from .resolver import DnsResolver, parse_servers

    servers = [a[1:] for a in args.rest if a.startswith("@")]
    words = [a for a in args.rest if not a.startswith("@")]
    if not words or len(words) > 2:
        print("usage: mirage-dns query NAME [TYPE] [@server[:port]]", file=sys.stderr)
        return 2
    name = Name.from_text(words[0] if words[0].endswith(".") else words[0] + ".")
    rtype = type_from_text(words[1]) if len(words) == 2 else 1
    stack = await SocketStack.connect(ipv4="0.0.0.0")
    resolver = DnsResolver(stack, parse_servers(",".join(servers) or "127.0.0.1"))
    try:
        answer = await resolver.query(name, rtype)
    finally:
        await resolver.disconnect()
        await stack.disconnect()
    print(f";; rcode {answer.rcode}")
    for rr in answer.answer:
        print(rr.to_text())
    return 0


def _need_unix() -> None:
    try:
        import mirage.unix.stack  # noqa: F401
    except ImportError:
        raise SystemExit("mirage-dns: serve and query need mirage-unix (mirage-dns[cli])") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mirage-dns", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="answer authoritatively for zone files")
    serve.add_argument("zones", nargs="+", metavar="ZONEFILE")
    serve.add_argument("--address", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=53)
    serve.add_argument(
        "--tsig-key",
        action="append",
        default=[],
        metavar="[ALG:]NAME:SECRET",
        help="a TSIG key (base64 secret); UPDATEs signed with it are applied",
    )
    serve.add_argument(
        "--no-response-cache",
        action="store_true",
        help="encode every answer afresh (the cache keeps answers to identical queries)",
    )
    check = sub.add_parser("check", help="parse and check zone files, print them")
    check.add_argument("zones", nargs="+", metavar="ZONEFILE")
    query = sub.add_parser("query", help="ask a name server (default 127.0.0.1)")
    query.add_argument("rest", nargs="+", metavar="NAME [TYPE] [@server]")
    args = parser.parse_args(argv)
    if args.command in ("serve", "query"):
        _need_unix()
    try:
        if args.command == "serve":
            asyncio.run(_serve(args))
        elif args.command == "check":
            from .server import load_zones

            for zone in load_zones(args.zones):
                for rr in zone.records():
                    print(rr.to_text())
        else:
            return asyncio.run(_query(args))
    except (DnsError, ValueError) as exc:
        print(f"mirage-dns: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
