"""Command-line options shared by the subcommands that read a FHIR server with a token."""

from __future__ import annotations

import argparse
import os
from typing import Any

__all__ = ["TOKEN_VARIABLE", "add_token_argument", "fhir_authorization", "fhir_token"]

#: The name of an environment variable, not a secret: a token given with --token is
#: visible to every user of the machine in `ps`, one in the environment is not.
TOKEN_VARIABLE = "MSCC_FHIR_TOKEN"  # noqa: S105


def add_token_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token", help=f"bearer token for the FHIR server (default: ${TOKEN_VARIABLE})")


def fhir_token(args: argparse.Namespace) -> str | None:
    token: str | None = args.token or os.environ.get(TOKEN_VARIABLE) or None
    return token


def fhir_authorization(token: str) -> dict[str, Any]:
    """The hook request's ``fhirAuthorization`` for a token the user holds."""
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        # "the OAuth 2.0 client identifier of the CDS Service"
        "subject": "mscc-cds",
    }
