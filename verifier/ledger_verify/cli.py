"""`ledger-verify <record-id> --rpc-url URL [--contract ADDRESS] [--api URL | --bundle FILE]
[--secret S --reference R] [--block-hash N=0x...] [--depth N]`; the access log:
`ledger-verify access-row (--proof FILE | --seq N --api URL --key K) [--rpc-url URL]` and
`ledger-verify access-day YYYY-MM-DD --api URL --key K --rpc-url URL` (ledger_verify/access_log.py).

Exit status: 0 when every claim is ok, 1 on any MISMATCH, 2 when something could not be
checked (and nothing mismatched), 3 on bad arguments or when nothing could be read."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import httpx

from ledger_verify import access_log, hops
from ledger_verify import protocol as p
from ledger_verify.bundle import Bundle, Tampered
from ledger_verify.checks import Verifier, kind_of
from ledger_verify.hops import MAX_DEPTH
from ledger_verify.net import TIMEOUT, Node, Service, Unavailable
from ledger_verify.report import EXIT_MISMATCH, EXIT_OK, EXIT_UNCHECKED, Report, safe

EXIT_USAGE = 3
BUNDLE_LIMIT = 32 * 1024 * 1024
_RECORD = re.compile(r"^(DN|DB|CP)(-[0-9A-HJKMNP-TV-Z]{4}){4}$")
_PATHS = {
    "donation": "/v1/donations/{}",
    "disbursement": "/v1/disbursements/{}",
    "campaign": "/v1/campaigns/{}",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def parser(prog: str = "ledger-verify") -> argparse.ArgumentParser:
    parse = _Parser(
        prog=prog,
        description="Check a charity ledger's claims about a donation (DN-...), a disbursement (DB-...) "
        "or a campaign (CP-...) against an Ethereum node, trusting nothing the service computed.",
    )
    parse.add_argument("record_id", nargs="+", help="DN-..., DB-... or CP-... (several: each in turn)")
    parse.add_argument("--rpc-url", help="a JSON-RPC node of the chain (the only source of truth)")
    parse.add_argument("--contract", help="the ledger contract's address (default: the one the API names)")
    source = parse.add_mutually_exclusive_group(required=True)
    source.add_argument("--api", help="the ledger service's base URL, whose public JSON holds the claims")
    source.add_argument("--bundle", type=Path, help="a proof bundle file (GET /v1/donations/{id}/proof)")
    parse.add_argument(
        "--secret",
        help="the receipt secret (0x + 64 hex), to check the donor commitment; or, for a"
        " disbursement, the recipient secret on a private recipient's slip",
    )
    parse.add_argument("--reference", help="the donor reference (or the recipient's details), with --secret")
    parse.add_argument(
        "--depth",
        type=int,
        default=0,
        choices=range(MAX_DEPTH + 1),
        metavar="N",
        help=f"for a donation: follow the money N hops (1..{MAX_DEPTH}) through grants to other"
        " campaigns, rebuilding every hop and the donor's share of every payment from the chain",
    )
    parse.add_argument(
        "--block-hash",
        action="append",
        default=[],
        metavar="N=0x...",
        help="a trusted block hash (for --bundle without --rpc-url); repeat per block",
    )
    return parse


def _trusted(pairs: list[str]) -> dict[int, bytes]:
    out = {}
    for pair in pairs:
        number, _, value = pair.partition("=")
        if not number.strip().isdigit() or not re.fullmatch(r"0x[0-9a-fA-F]{64}", value.strip()):
            raise ValueError(f"--block-hash takes N=0x<64 hex>, not {pair!r}")
        out[int(number)] = bytes.fromhex(value.strip()[2:])
    return out


def main(
    argv: Sequence[str] | None = None, write: Callable[[str], None] = print, prog: str = "ledger-verify"
) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] in ACCESS_COMMANDS:
        return access_main(arguments, write, prog)
    args = parser(prog).parse_args(argv)
    records = [r.strip().upper() for r in args.record_id]
    for typed, record_id in zip(args.record_id, records, strict=True):
        if not _RECORD.fullmatch(record_id):
            write(f"error: {safe(typed)} is not a donation, disbursement or campaign ID (DN-/DB-/CP-)")
            return EXIT_USAGE
    if args.bundle is not None and (len(records) != 1 or kind_of(records[0]) != "donation"):
        write("error: a proof bundle is made for one donation (DN-...)")
        return EXIT_USAGE
    if args.depth and (args.bundle is not None or any(kind_of(r) != "donation" for r in records)):
        write("error: --depth follows a donation (DN-...) through the service's hops (--api)")
        return EXIT_USAGE
    if args.rpc_url is None and not (args.bundle is not None and args.block_hash):
        write("error: --rpc-url is needed (or, with --bundle, --block-hash N=0x... for each block)")
        return EXIT_USAGE
    if args.secret is not None and len(records) != 1:
        write("error: --secret and --reference prove one donation or disbursement")
        return EXIT_USAGE
    if (args.secret is None) != (args.reference is None):
        write("error: --secret and --reference go together")
        return EXIT_USAGE
    secret = None
    if args.secret is not None:
        if not re.fullmatch(r"(0x)?[0-9a-fA-F]{64}", args.secret.strip()):
            write("error: --secret is 32 bytes of hex (as printed on the receipt)")
            return EXIT_USAGE
        secret = bytes.fromhex(args.secret.strip().removeprefix("0x"))
    try:
        trusted = _trusted(args.block_hash)
    except ValueError as exc:
        write(f"error: {safe(str(exc))}")
        return EXIT_USAGE
    with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client:
        codes = []
        for record_id in records:
            try:
                codes.append(run(args, record_id, kind_of(record_id) or "", secret, trusted, client, write))
            except Unavailable as exc:
                write(f"error: {safe(str(exc))}")
                codes.append(EXIT_USAGE)
    # The worst outcome: a mismatch, then anything unreadable, then anything unchecked.
    return next((c for c in (EXIT_MISMATCH, EXIT_USAGE, EXIT_UNCHECKED) if c in codes), EXIT_OK)


def run(
    args: argparse.Namespace,
    record_id: str,
    kind: str,
    secret: bytes | None,
    trusted: dict[int, bytes],
    client: httpx.Client,
    write: Callable[[str], None],
) -> int:
    report = Report(write)
    node = Node(args.rpc_url, client) if args.rpc_url else None
    service = Service(args.api, client) if args.api else None
    bundle = None
    if service is not None:
        info = service.json("/v1/contract")
        path = _PATHS[kind].format(record_id)
        claims = service.json(f"{path}?depth={args.depth}" if args.depth else path)
        source = "the API"
    else:
        data = _load_bundle(args.bundle)
        if isinstance(data, str):
            write(f"error: {safe(data)}")
            return EXIT_USAGE
        info = data
        claims = data.get("trace")
        source = "the bundle"
        where = data.get("service")
        if isinstance(where, str) and re.fullmatch(r"https?://[^\s]+", where):
            # evidence documents are downloaded from it: their bytes are checked by hash
            service = Service(where, client)

        def trusted_hash(number: int) -> bytes | None:
            if node is not None:
                block = node.block(number)
                return bytes.fromhex(block["hash"][2:]) if block else None
            return trusted.get(number)

        try:
            bundle = Bundle(data, trusted_hash)
        except Tampered as exc:
            write(f"error: {safe(str(exc))}")
            return EXIT_USAGE
    if not isinstance(info, dict) or not isinstance(claims, dict):
        write(f"error: {source} did not give the contract and the record")
        return EXIT_USAGE
    contract = args.contract or info.get("address") or info.get("contract")
    taken = "as given" if args.contract else f"taken from {source}"
    if not isinstance(contract, str) or not re.fullmatch(r"0x[0-9a-fA-F]{40}", contract):
        write(f"error: no contract address (give --contract); {source} said {safe(str(contract))}")
        return EXIT_USAGE
    deployment = info.get("deployment_block")
    if not isinstance(deployment, int) or deployment < 0:
        write(f"error: {source} names no deployment block")
        return EXIT_USAGE
    report.note(
        f"ledger-verify {record_id}: claims from {source},"
        f" truth from {args.rpc_url or 'trusted block hashes'}"
    )
    if bundle is not None and node is None:
        report.note("offline: each log is proven by its receipt's Merkle proof up to a block hash you trust")
    verifier = Verifier(report, node, contract, deployment, service, bundle)
    verifier.chain_id(info.get("chain_id"))
    if bundle is not None:
        _bundle_abi(report, info)
        if node is None:
            report.unchecked(
                "transaction hashes",
                "offline, logs are proven by block and position; --rpc-url matches the hashes",
            )
    if verifier.contract_code(taken):
        if claims.get("id") != record_id:
            report.mismatch("record", record_id, claims.get("id"))
        try:
            if kind == "donation":
                verifier.donation(claims, secret, args.reference)
                if args.depth:
                    hops.verify(verifier, claims, args.depth)
            elif kind == "disbursement":
                verifier.disbursement(claims, secret, args.reference)
            else:
                verifier.campaign(claims)
        except (AttributeError, TypeError, KeyError, ValueError, IndexError) as exc:
            # A claim of the wrong shape (a hostile or broken service): what is left is not checked.
            report.unchecked(
                "the remaining claims", f"{source} gave a malformed answer ({type(exc).__name__})"
            )
    write(f"{report.summary()}: {_verdict(report.exit_code())}")
    return report.exit_code()


def _verdict(code: int) -> str:
    return {
        0: "every claim holds",
        1: "the claims do NOT match the chain",
        2: "not everything could be checked",
    }[code]


def _bundle_abi(report: Report, data: dict[str, Any]) -> None:
    """The bundle's ABI is informative: ledger-verify decodes with its own copy."""
    theirs = {json.dumps(f, sort_keys=True) for f in data.get("abi") or [] if isinstance(f, dict)}
    ours = {json.dumps(f, sort_keys=True) for f in p.fragments()}
    if ours <= theirs:
        report.ok("bundle ABI fragments", "the same as ledger-verify's own")
    else:
        report.mismatch("bundle ABI fragments", "the ledger's events and views", "different fragments")


def _load_bundle(path: Path) -> dict[str, Any] | str:
    try:
        if path.stat().st_size > BUNDLE_LIMIT:
            return f"{path} is larger than {BUNDLE_LIMIT:,} bytes"
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        return f"cannot read the bundle {path}: {exc}"
    if not isinstance(data, dict):
        return "the bundle is not a JSON object"
    return data


if __name__ == "__main__":
    sys.exit(main())


# ------------------------------------------------------------------ the access log

ACCESS_COMMANDS = ("access-row", "access-day")
_KEY_ENV = "LEDGER_API_KEY"


def access_parser(command: str, prog: str) -> argparse.ArgumentParser:
    parse = _Parser(
        prog=f"{prog} {command}",
        description=(
            "Check one access-log row's inclusion proof against its day's root sealed on chain."
            if command == "access-row"
            else "Rebuild a UTC day's access-log root from every row (read with an auditor or admin key) "
            "and compare it, the row count and the last row's hash with the day's seal on chain."
        ),
    )
    if command == "access-row":
        source = parse.add_mutually_exclusive_group(required=True)
        source.add_argument("--proof", type=Path, help="a row proof (GET /v1/audit/access-log/{seq}/proof)")
        source.add_argument(
            "--seq", type=int, help="the row's seq, its proof fetched from --api with the key"
        )
    else:
        parse.add_argument("day", help="the UTC day, YYYY-MM-DD")
    parse.add_argument("--rpc-url", help="a JSON-RPC node of the chain (the only source of truth)")
    parse.add_argument("--contract", help="the ledger contract's address (default: the one the API names)")
    parse.add_argument("--api", help="the ledger service's base URL")
    parse.add_argument("--key", help=f"an auditor or admin API key (default: ${_KEY_ENV})")
    return parse


def access_main(argv: Sequence[str], write: Callable[[str], None], prog: str) -> int:
    command, rest = argv[0], list(argv[1:])
    args = access_parser(command, prog).parse_args(rest)
    key = args.key or os.environ.get(_KEY_ENV)
    needs_api = command == "access-day" or args.seq is not None
    if needs_api and (args.api is None or not key):
        write(
            f"error: {command} reads the log from --api with an auditor or admin key (--key or ${_KEY_ENV})"
        )
        return EXIT_USAGE
    if command == "access-day" and args.rpc_url is None:
        write("error: --rpc-url is needed: the day's seal is read from the chain")
        return EXIT_USAGE
    try:
        day = access_log.day_number(args.day) if command == "access-day" else None
    except ValueError:
        write(f"error: {safe(args.day)} is not a day (YYYY-MM-DD)")
        return EXIT_USAGE
    report = Report(write)
    with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        service = Service(args.api, client, headers) if args.api else None
        node = Node(args.rpc_url, client) if args.rpc_url else None
        try:
            contract = args.contract
            if contract is None and node is not None:
                if service is None:
                    write("error: give --contract (or --api, which names it)")
                    return EXIT_USAGE
                contract = service.json("/v1/contract").get("address")
            if contract is not None and not re.fullmatch(r"0x[0-9a-fA-F]{40}", str(contract)):
                write(f"error: not a contract address: {safe(str(contract))}")
                return EXIT_USAGE
            if command == "access-row":
                if args.proof is not None:
                    proof = _load_bundle(args.proof)
                    if isinstance(proof, str):
                        write(f"error: {safe(proof)}")
                        return EXIT_USAGE
                else:
                    assert service is not None
                    proof = service.json(f"/v1/audit/access-log/{int(args.seq)}/proof")
                access_log.check_row(report, proof, node, contract)
            else:
                assert service is not None and node is not None and contract is not None and day is not None
                access_log.check_day(report, day, _day_rows(service, args.day), node, contract)
        except Unavailable as exc:
            write(f"error: {safe(str(exc))}")
            return EXIT_USAGE
        except (AttributeError, TypeError, KeyError, ValueError, IndexError) as exc:
            report.unchecked("the access log", f"a malformed answer ({type(exc).__name__})")
    write(report.summary())
    return report.exit_code()


def _day_rows(service: Service, day: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = f"/v1/audit/access-log?from={day}&to={day}&limit=200"
        page = service.json(query + (f"&cursor={cursor}" if cursor else ""))
        rows += page["items"]
        cursor = page.get("next")
        if not cursor:
            return rows
