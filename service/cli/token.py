"""``mscc-cds token``: mint one client JWT, as ``call`` signs them, for curl and other tools."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from service.cli.exitcodes import FAILURE, OK

__all__ = ["EXIT_CODES", "HELP", "add_arguments", "run"]

HELP = "Print a signed client JWT (5 minutes, one use) for one service endpoint, e.g. for curl."
EXIT_CODES = {0: "the token is on stdout", 1: "the signing key cannot be read or used"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--signing-key", required=True, type=Path, metavar="PEM", help="private key (EC P-384 or RSA)")
    parser.add_argument("--issuer", required=True, metavar="ISS", help="JWT iss, as trusted in MSCC_AUTH__ISSUERS")
    parser.add_argument(
        "--audience",
        required=True,
        metavar="URL",
        help="the exact URL the token is for (aud): e.g. http://127.0.0.1:8080/cds-services/SERVICE_ID",
    )
    parser.add_argument("--kid", help="JWT kid (default: the key's RFC 7638 thumbprint)")
    parser.add_argument("--jwks-out", type=Path, metavar="FILE", help="also write the key's public JWK Set here")


def run(args: argparse.Namespace) -> int:
    from service.cli.ehr_client import CallError, SigningKey, write_jwks

    try:
        signer = SigningKey.load(args.signing_key, issuer=args.issuer, kid=args.kid)
    except CallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return FAILURE
    if args.jwks_out is not None:
        write_jwks(signer, args.jwks_out)
    # Each token carries a new jti: the service accepts it once (replay protection).
    print(signer.token(args.audience))
    return OK
