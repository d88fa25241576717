"""``mscc-cds screen``: screen one patient of a FHIR server, in-process, and print the cards.

The service is built exactly as ``serve`` builds it (``create_app`` with the MSCC_*
settings), but no HTTP server runs: the patient-view hook is handed straight to the CDS
Service, with no prefetch, so every key is read from ``--fhir-server`` by the service's
own FHIR client. The server given on the command line is added to the allowlist.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from service.cli.configuration import load_cli_settings
from service.cli.exitcodes import FAILURE, USAGE
from service.cli.fhir_access import add_token_argument, fhir_authorization, fhir_token
from service.cli.seeded import seeded_time

if TYPE_CHECKING:
    from cds_hooks.models import CDSRequest
    from service.settings import Settings

__all__ = ["EXIT_CODES", "HELP", "add_arguments", "evaluation_time", "parse_time", "run"]

HELP = "Screen one patient from a FHIR server in-process (no HTTP server) and print the cards."
EXIT_CODES = {0: "no card", 10: "at least one card", 1: "the FHIR server or the patient could not be read"}
#: A terminal user waits happily for a few seconds; the hook's ~0.35 s budget is for EHRs.
DEFAULT_BUDGET_S = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fhir-server", required=True, metavar="URL", help="FHIR base URL")
    parser.add_argument("--patient", required=True, metavar="ID", help="the Patient's logical id")
    add_token_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the CDS Hooks response as JSON")
    parser.add_argument(
        "--at",
        metavar="ISO|now",
        help="screen as of this time (ISO 8601 with offset); default: the time `seed` shifted this FHIR server's "
        "examples to (development mode), else now",
    )
    parser.add_argument(
        "--budget", type=float, default=DEFAULT_BUDGET_S, metavar="S", help="FHIR time budget (default: 10)"
    )


def parse_time(text: str) -> datetime:
    """An aware datetime from ISO 8601; ``ValueError`` when it is not one."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("the time needs a UTC offset, e.g. 2026-06-01T10:00:00+01:00")
    return moment


def evaluation_time(given: str | None, fhir_server: str, *, development: bool) -> datetime:
    """``--at``: a time, ``now``, or by default the seeded time of ``fhir_server`` (development only)."""
    if given and given != "now":
        return parse_time(given)
    if given is None and development:
        from service.fhir.origin import ServerRefused, normalize_server_url

        try:
            seeded = seeded_time(normalize_server_url(fhir_server))
        except ServerRefused:
            seeded = None
        if seeded is not None:
            print(
                f"At {seeded.isoformat()}, the time `seed` shifted the examples to (--at now: the clock)",
                file=sys.stderr,
            )
            return seeded
    return datetime.now(UTC)


def screening_settings(settings: Settings, fhir_server: str, budget_s: float) -> Settings:
    """``settings`` with ``fhir_server`` allowed and a terminal-sized time budget."""
    from service.fhir.origin import normalize_server_url

    allowed = [*settings.fhir.allowed_servers, normalize_server_url(fhir_server)]
    fhir = settings.fhir.model_copy(
        update={"allowed_servers": allowed, "budget_s": budget_s, "request_timeout_s": budget_s}
    )
    # JSON log lines would bury the cards: only errors reach stderr here.
    return settings.model_copy(update={"fhir": fhir, "log_level": "ERROR"})


def _request(fhir_server: str, patient_id: str, token: str | None) -> CDSRequest:
    import uuid

    from cds_hooks.models import CDSRequest

    body: dict[str, object] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": fhir_server,
        "context": {"userId": "Practitioner/mscc-cds-cli", "patientId": patient_id},
    }
    if token:
        body["fhirAuthorization"] = fhir_authorization(token)
    return CDSRequest.model_validate(body)


async def _screen(settings: Settings, request: CDSRequest, at: datetime) -> tuple[list[dict[str, Any]], list[str]]:
    """The cards, and the prefetch keys the service could not read."""
    from cds_hooks.registry import Invocation
    from service.app import create_app  # the whole service: imported only when used
    from service.screening import service_id_for

    app = create_app(settings, clock=lambda: at)
    service_id = service_id_for(request.hook)
    service = app.state.registry.get(service_id)
    invocation = Invocation(service_id=service_id, request=request, client=None, received_at=at)
    async with app.router.lifespan_context(app):
        response = await service.handle(invocation)
    missing = invocation.annotations.get("prefetch_keys_missing")
    return [card.to_json() for card in response.cards], [str(key) for key in missing or ()] if isinstance(
        missing, list
    ) else []


def run(args: argparse.Namespace) -> int:
    import asyncio

    from pydantic import ValidationError

    from cds_hooks.errors import CDSHooksError
    from service.cli.render import cards_exit_code, render_cards, render_cards_json
    from service.fhir.origin import ServerRefused

    token = fhir_token(args)
    try:
        loaded = load_cli_settings()
        at = evaluation_time(args.at, args.fhir_server, development=loaded.mode == "development")
    except ValueError as exc:
        print(f"error: --at: {exc}", file=sys.stderr)
        return USAGE
    try:
        settings = screening_settings(loaded, args.fhir_server, args.budget)
        request = _request(args.fhir_server, args.patient, token)
    except ServerRefused as exc:
        print(f"error: --fhir-server: {exc}", file=sys.stderr)
        return FAILURE
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors())
        print(f"error: invalid arguments: {problems}", file=sys.stderr)
        return USAGE
    print(f"Screening patient {args.patient} from {args.fhir_server} at {at.isoformat()} ...", file=sys.stderr)
    try:
        cards, missing = asyncio.run(_screen(settings, request, at))
    except CDSHooksError as exc:
        print(f"error: {exc.message} (HTTP {exc.status_code})", file=sys.stderr)
        for detail in exc.details:
            print(f"  {detail}", file=sys.stderr)
        return FAILURE
    if missing:
        print(f"Not available (the cards say what this means): {', '.join(missing)}", file=sys.stderr)
    if args.json:
        print(render_cards_json(cards))
    else:
        print(render_cards(cards, f"for patient {args.patient} at {at.isoformat()}"))
    return cards_exit_code(cards)
