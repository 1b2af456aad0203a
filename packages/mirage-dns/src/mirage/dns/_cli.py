"""The ``mirage-dns`` command: ``serve``, ``check``, ``query`` and ``resolve``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._consts import type_from_text
from ._errors import DnsError
from ._name import Name
from ._plugin import ROOT_SERVERS

if TYPE_CHECKING:
    from ._signing import ZoneSigner

__all__ = ["main"]


async def _serve(args: argparse.Namespace) -> None:
    from mirage.unix.stack import SocketStack

    from .server import serve

    stack = await SocketStack.connect(ipv4=args.address)
    from ._server import CACHE_SIZE
    from ._tsig import parse_key

    keys = [parse_key(text) for text in args.tsig_key]
    cache_size = 0 if args.no_response_cache else CACHE_SIZE
    from .resolver import parse_servers

    targets = parse_servers(",".join(args.notify)) if args.notify else []
    signers = _signers(args.dnssec_key, args.nsec3, args.opt_out, args.dnssec_publish)
    server = await serve(stack, args.zones, args.port, tsig_keys=keys, cache_size=cache_size,
                         signers=signers, journal=args.journal,
                         notify=_notify_all(args.zones, targets),
                         host_udp=None if args.stack_udp else args.address,
                         nsid=args.nsid.encode() if args.nsid is not None else None)  # fmt: skip
    zones = ", ".join(str(z.origin) for z in server.authority.zones.values())
    tls = ""
    if args.tls_cert or args.tls_key:
        from mirage.tls import CertifiedKey, TlsConfig

        from .dot import listen_tls

        if not (args.tls_cert and args.tls_key):
            raise ValueError("--tls-cert and --tls-key go together")
        with open(args.tls_cert, "rb") as cert, open(args.tls_key, "rb") as key:
            certified = CertifiedKey.from_pem(cert.read(), key.read())
        await listen_tls(server, TlsConfig(certificates=(certified,)), args.tls_port)
        tls = f" (TLS port {args.tls_port})"
    print(f"mirage-dns: serving {zones} on {args.address} port {args.port}{tls}", flush=True)
    await asyncio.Event().wait()


def _notify_all(
    zone_files: list[str], targets: list[tuple[str, int]]
) -> dict[Name, list[tuple[str, int]]]:
    if not targets:
        return {}
    from .server import load_zones

    return {zone.origin: list(targets) for zone in load_zones(zone_files)}


def _signers(
    key_files: list[str], nsec3: str | None, opt_out: bool = False, publish: Sequence[str] = ()
) -> dict[Name, ZoneSigner]:
    from ._dnssec import SigningKey
    from ._rdata import NSEC3PARAM
    from ._signing import ZoneSigner

    param = None
    if nsec3 is not None:
        salt, _, iterations = nsec3.partition(":")
        try:
            param = NSEC3PARAM(1, int(opt_out), int(iterations or "0"),
                               b"" if salt in ("", "-") else bytes.fromhex(salt))  # fmt: skip
        except ValueError:
            raise ValueError(f"bad --nsec3 {nsec3!r} (SALT:ITERATIONS, salt in hex or -)") from None
    by_zone: dict[Name, list[SigningKey]] = {}
    for path in key_files:
        owner, key = SigningKey.from_bind_files(path)
        by_zone.setdefault(owner, []).append(key)
    published: dict[Name, list[SigningKey]] = {}
    for path in publish:
        owner, key = SigningKey.from_bind_files(path)
        if owner not in by_zone:
            raise ValueError(f"--dnssec-publish {path}: no --dnssec-key signs {owner}")
        published.setdefault(owner, []).append(key)
    return {owner: ZoneSigner(tuple(keys), param, publish=tuple(published.get(owner, ())))
            for owner, keys in by_zone.items()}  # fmt: skip


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
    resolver: DnsResolver
    if args.tls:
        from mirage.tls import TlsConfig

        from .dot import DOT_PORT, DotResolver

        roots: tuple[Any, ...] = ()
        if args.tls_ca:
            from cryptography import x509

            with open(args.tls_ca, "rb") as pem:
                roots = tuple(x509.load_pem_x509_certificates(pem.read()))
        config = TlsConfig(trust_store=roots, verify_peer=bool(roots))
        targets = parse_servers(",".join(servers) or "127.0.0.1", default_port=DOT_PORT)
        resolver = DotResolver(stack, targets, config, server_name=args.tls_name)
    else:
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


async def _resolve(args: argparse.Namespace) -> int:
    from mirage.unix.stack import SocketStack

    from ._zonefile import parse_zone
    from .resolver import RecursiveResolver, parse_servers

    hints = [host for host, _ in parse_servers(args.root_hints)]
    anchors = []
    for text in args.trust_anchor:
        anchors += parse_zone("$TTL 3600\n" + text + "\n", Name(()))
    stack = await SocketStack.connect(ipv4="0.0.0.0")
    resolver = RecursiveResolver(stack, hints, port=args.port, trust_anchors=anchors)
    code = 0
    try:
        for word in args.names:
            name_text, _, type_text = word.partition("/")
            name = Name.from_text(name_text if name_text.endswith(".") else name_text + ".")
            rtype = type_from_text(type_text or args.type)
            try:
                answer = await resolver.query(name, rtype)
            except DnsError as exc:
                print(f";; {name} {type_text or args.type}: {exc}")
                print(f";; queries {resolver.last_queries}")
                code = 1
                continue
            secure = " secure" if answer.secure else ""
            print(f";; {name} {type_text or args.type} rcode {answer.rcode}{secure}")
            for rr in answer.answer:
                print(rr.to_text())
            print(f";; queries {resolver.last_queries}")
    finally:
        await resolver.disconnect()
        await stack.disconnect()
    return code


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
        "--dnssec-key",
        action="append",
        default=[],
        metavar="K<zone>+<alg>+<tag>.private",
        help="sign the key's zone with it (dnssec-keygen files; the .key file beside it)",
    )
    serve.add_argument(
        "--nsec3",
        metavar="SALT:ITERATIONS",
        help="deny existence with NSEC3 (salt in hex or -) instead of NSEC",
    )
    serve.add_argument(
        "--dnssec-publish",
        action="append",
        default=[],
        metavar="K<zone>+<alg>+<tag>.private",
        help="publish the key in the DNSKEY RRset without signing (a key rollover)",
    )
    serve.add_argument("--opt-out", action="store_true",
                       help="NSEC3 opt-out (RFC 5155): unsigned delegations left out")  # fmt: skip
    serve.add_argument("--nsid", metavar="TEXT", help="the server identifier (RFC 5001)")
    serve.add_argument("--tls-cert", metavar="PEM", help="certificate chain for DNS over TLS")
    serve.add_argument("--tls-key", metavar="PEM", help="its private key")
    serve.add_argument("--tls-port", type=int, default=853, help="the DNS over TLS port")
    serve.add_argument(
        "--journal",
        action="store_true",
        help="keep changes (UPDATEs) in ZONEFILE.jnl, replayed at start; IXFR serves them",
    )
    serve.add_argument(
        "--notify",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="send NOTIFY to this secondary when a zone changes",
    )
    serve.add_argument(
        "--stack-udp",
        action="store_true",
        help="answer UDP through the mirage stack (default: a host socket read in batches)",
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
    query.add_argument("--tls", action="store_true", help="DNS over TLS (port 853)")
    query.add_argument("--tls-ca", metavar="PEM", help="roots the server must chain to")
    query.add_argument("--tls-name", metavar="NAME", help="the name the certificate is for")
    resolve = sub.add_parser("resolve", help="resolve iteratively from the root servers")
    resolve.add_argument("names", nargs="+", metavar="NAME[/TYPE]")
    resolve.add_argument("--type", default="A", help="the type for names without one")
    resolve.add_argument("--root-hints", default=ROOT_SERVERS, metavar="ADDR,...")
    resolve.add_argument("--port", type=int, default=53, help="the servers' port")
    resolve.add_argument(
        "--trust-anchor",
        action="append",
        default=[],
        metavar="RECORD",
        help="validate with DNSSEC from this DS or DNSKEY record ('. DS 20326 8 2 E06D...')",
    )
    args = parser.parse_args(argv)
    if args.command in ("serve", "query", "resolve"):
        _need_unix()
    try:
        if args.command == "serve":
            asyncio.run(_serve(args))
        elif args.command == "check":
            from .server import load_zones

            for zone in load_zones(args.zones):
                for rr in zone.records():
                    print(rr.to_text())
        elif args.command == "resolve":
            return asyncio.run(_resolve(args))
        else:
            return asyncio.run(_query(args))
    except (DnsError, ValueError) as exc:
        print(f"mirage-dns: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
