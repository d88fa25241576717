"""``mscc-cds seed``: load the example patients into a FHIR server (a sandbox, HAPI, ...).

Every scenario of ``profiles/examples`` marked ``"sandbox": true`` becomes one FHIR
transaction Bundle of PUTs, so ids are kept, references stay valid and seeding twice
updates rather than duplicates. By default every date is shifted so that the scenario's
referenceTime becomes now: the rules' windows ("in the last 7 days") still fire when the
service screens the patient at the real time.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.cli.exitcodes import FAILURE, OK
from service.cli.fhir_access import add_token_argument, fhir_token
from service.cli.seeded import record_seeding
from service.errors import MsccError
from service.paths import DEFAULT_PROFILES_DIR

if TYPE_CHECKING:
    import httpx

    from service.scenarios import Scenario

__all__ = ["EXIT_CODES", "HELP", "SeedError", "add_arguments", "run", "seed_scenarios"]

HELP = "Load the example patients (sandbox scenarios) into a FHIR server as transaction Bundles."
EXIT_CODES = {0: "every scenario was loaded", 1: "the FHIR server is unreachable or refused a scenario"}


class SeedError(MsccError):
    """Seeding stopped; the message is meant for the person at the terminal."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fhir-server", required=True, metavar="URL", help="FHIR base URL, e.g. http://127.0.0.1:8091/fhir"
    )
    add_token_argument(parser)
    parser.add_argument(
        "--shift-dates",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="move every date so that each scenario's referenceTime becomes now (default: on)",
    )
    parser.add_argument("--examples", type=Path, metavar="DIR", help="scenario folder (default: <profiles>/examples)")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="S", help="per transaction (default: 60)")


def _outcome_text(response: httpx.Response) -> str:
    import orjson

    try:
        body: Any = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.reason_phrase
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        texts = [str(issue.get("diagnostics") or issue.get("code")) for issue in body.get("issue") or ()]
        return "; ".join(texts)[:2000]
    return response.reason_phrase


def seed_scenarios(
    http: httpx.Client, base_url: str, scenarios: Sequence[Scenario], *, now: datetime | None
) -> list[tuple[Scenario, int]]:
    """POST one transaction per scenario to ``base_url``; the scenarios and their resource counts.

    Progress goes to stderr: a bar on a terminal, one plain line per scenario otherwise
    (a log file or CI output gains nothing from carriage returns).
    """
    import httpx
    import orjson
    from tqdm import tqdm

    from service.scenarios import transaction_bundle

    loaded = []
    interactive = sys.stderr.isatty()
    progress = tqdm(scenarios, desc="Seeding", unit="patient", file=sys.stderr, disable=not interactive)
    for number, scenario in enumerate(progress, start=1):
        if not interactive:
            print(f"[{number}/{len(scenarios)}] {scenario.name}", file=sys.stderr)
        bundle = transaction_bundle(scenario, now=now)
        try:
            response = http.post(
                base_url,
                content=orjson.dumps(bundle),
                headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"},
            )
        except httpx.HTTPError as exc:
            raise SeedError(f"cannot reach the FHIR server at {base_url} ({type(exc).__name__})") from None
        if not response.is_success:
            raise SeedError(
                f"the FHIR server refused scenario {scenario.name} (HTTP {response.status_code}): "
                f"{_outcome_text(response)}"
            )
        loaded.append((scenario, len(bundle["entry"])))
    return loaded


def _profiles_dir() -> Path:
    # Only the folder is needed: reading the full Settings would make seeding depend on the
    # service's security configuration (production mode refuses to build Settings without it).
    return Path(os.environ.get("MSCC_PROFILES_DIR") or DEFAULT_PROFILES_DIR)


def run(args: argparse.Namespace) -> int:
    import httpx

    from service.fhir.origin import ServerRefused, normalize_server_url
    from service.scenarios import ScenarioError, load_scenarios

    try:
        base_url = normalize_server_url(args.fhir_server)
    except ServerRefused as exc:
        print(f"error: --fhir-server: {exc}", file=sys.stderr)
        return FAILURE
    examples = args.examples or _profiles_dir() / "examples"
    try:
        scenarios = load_scenarios(examples, sandbox_only=True)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return FAILURE
    if not scenarios:
        print(f"error: no sandbox scenario in {examples}", file=sys.stderr)
        return FAILURE
    now = datetime.now(UTC) if args.shift_dates else None
    token = fhir_token(args)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    shifted = "dates shifted to now" if now else "dates as written"
    print(f"Loading {len(scenarios)} scenarios into {base_url} ({shifted}) ...", file=sys.stderr)
    with httpx.Client(headers=headers, timeout=args.timeout, follow_redirects=False) as http:
        try:
            loaded = seed_scenarios(http, base_url, scenarios, now=now)
        except SeedError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return FAILURE
    for scenario, count in loaded:
        print(f"{scenario.patient_id}\t{scenario.name}\t{count} resources")
    print(f"Loaded {len(loaded)} patients.", file=sys.stderr)
    if now is not None:
        record_seeding(base_url, now)
        print(
            f"Shifted to {now.isoformat(timespec='seconds')}: in development mode `screen` and `call` "
            "evaluate at this time, so the cards stay those documented (--at now to use the clock).",
            file=sys.stderr,
        )
    return OK
