"""``mscc-cds call``: act as a CDS Client (an EHR) against a running CDS Service.

The session itself (discovery, prefetch, the signed hook call) is
:mod:`service.cli.ehr_client`, imported when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from service.cli.exitcodes import FAILURE, USAGE
from service.cli.fhir_access import add_token_argument
from service.cli.screen import parse_time
from service.cli.seeded import seeded_time

__all__ = ["EXIT_CODES", "HELP", "HOOKS", "add_arguments", "run"]

HELP = "Act as a CDS Client: discovery, prefetch from a FHIR server, a signed hook call; print the cards."
EXIT_CODES = {0: "no card", 10: "at least one card", 1: "the service or FHIR server failed, or a bad signing key"}
#: service.clinical.outcome.HOOKS, written out so that `--help` imports nothing heavy (a test keeps them equal)
HOOKS = ("patient-view", "encounter-start", "order-select", "order-sign")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--service", required=True, metavar="BASE_URL", help="CDS Service base, e.g. http://127.0.0.1:8080"
    )
    parser.add_argument("--patient", required=True, metavar="ID", help="the Patient's logical id")
    parser.add_argument("--fhir-server", required=True, metavar="URL", help="FHIR base URL the prefetch is read from")
    add_token_argument(parser)
    parser.add_argument("--signing-key", type=Path, metavar="PEM", help="private key (EC P-384 or RSA) to sign the JWT")
    parser.add_argument("--issuer", metavar="ISS", help="JWT iss (required with --signing-key)")
    parser.add_argument("--kid", help="JWT kid (default: the key's RFC 7638 thumbprint)")
    parser.add_argument("--jwks-out", type=Path, metavar="FILE", help="also write the key's public JWK Set here")
    parser.add_argument("--hook", choices=HOOKS, default="patient-view")
    parser.add_argument("--encounter", metavar="ID", help="context.encounterId (required by encounter-start)")
    parser.add_argument(
        "--draft-orders",
        type=Path,
        metavar="FILE",
        help="context.draftOrders for order-select/order-sign: a FHIR R4 Bundle of the orders being written",
    )
    parser.add_argument(
        "--selection",
        action="append",
        metavar="TYPE/ID",
        help="context.selections for order-select (repeatable; default: every draft order)",
    )
    parser.add_argument(
        "--service-id", metavar="ID", help="which discovered service to call (default: the first for the hook)"
    )
    parser.add_argument("--user", default="Practitioner/mscc-cds-cli", help="context.userId")
    parser.add_argument(
        "--at",
        metavar="ISO|now",
        help="ask a development service to evaluate at this time (ISO 8601 with offset); default: the time `seed` "
        "shifted this FHIR server's examples to, if it did; `now`: the service's clock",
    )
    parser.add_argument("--json", action="store_true", help="print the CDS Hooks response as JSON")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="S", help="per HTTP request (default: 30)")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from service.cli.draftorders import DraftOrderError, draft_order_context
    from service.cli.ehr_client import CallError, SigningKey, call_service, write_jwks
    from service.cli.render import cards_exit_code, render_cards, render_cards_json
    from service.fhir.origin import ServerRefused, normalize_server_url

    try:
        fhir_server = normalize_server_url(args.fhir_server)
    except ServerRefused as exc:
        print(f"error: --fhir-server: {exc}", file=sys.stderr)
        return FAILURE
    args.evaluation_time = None
    if args.at != "now":
        try:
            args.evaluation_time = parse_time(args.at) if args.at else seeded_time(fhir_server)
        except ValueError as exc:
            print(f"error: --at: {exc}", file=sys.stderr)
            return USAGE
    if args.evaluation_time is not None and not args.at:
        print(
            f"At {args.evaluation_time.isoformat()}, when `seed` shifted the examples (--at now: the clock)",
            file=sys.stderr,
        )
    if args.hook == "encounter-start" and not args.encounter:
        print("error: --hook encounter-start needs --encounter", file=sys.stderr)
        return FAILURE
    try:
        order_context = draft_order_context(args.hook, args.draft_orders, args.selection, args.patient)
    except DraftOrderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return FAILURE
    signer = None
    try:
        if args.signing_key is not None:
            if not args.issuer:
                print("error: --signing-key needs --issuer", file=sys.stderr)
                return FAILURE
            signer = SigningKey.load(args.signing_key, issuer=args.issuer, kid=args.kid)
            if args.jwks_out is not None:
                write_jwks(signer, args.jwks_out)
        cards = asyncio.run(call_service(args, fhir_server, signer, order_context))
    except CallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return FAILURE
    if args.json:
        print(render_cards_json(cards))
    else:
        print(render_cards(cards, f"from {args.service.rstrip('/')} for patient {args.patient}"))
    return cards_exit_code(cards)
