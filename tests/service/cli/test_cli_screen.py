"""``mscc-cds screen`` pieces that need no FHIR server, and the card rendering shared with ``call``."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import orjson
import pytest

from service.cli import main
from service.cli.exitcodes import CARDS, FAILURE, NO_CARDS, USAGE
from service.cli.render import cards_exit_code, render_cards, render_cards_json
from service.cli.screen import parse_time, screening_settings
from service.settings import Settings

CARD = {
    "uuid": "1",
    "summary": "Suspected MSCC: whole-spine MRI within 24 hours",
    "detail": "**Evidence**\n\n- Urinary retention (recorded 2026-05-31)\n- NSCLC stage IV",
    "indicator": "critical",
    "source": {"label": "NICE NG234", "url": "https://www.nice.org.uk/guidance/ng234", "topic": {"code": "R1"}},
    "selectionBehavior": "at-most-one",
    "suggestions": [
        {
            "label": "Order whole-spine MRI",
            "isRecommended": True,
            "actions": [
                {
                    "type": "create",
                    "description": "d",
                    "resource": {
                        "resourceType": "ServiceRequest",
                        "priority": "stat",
                        "code": {
                            "coding": [
                                {"system": "http://snomed.info/sct", "code": "1", "display": "MRI of whole spine"}
                            ]
                        },
                    },
                }
            ],
        }
    ],
}


def test_parse_time() -> None:
    assert parse_time("2026-06-01T10:00:00+01:00").utcoffset() is not None
    assert parse_time("2026-06-01T09:00:00Z").astimezone(UTC).hour == 9
    with pytest.raises(ValueError, match="UTC offset"):
        parse_time("2026-06-01T10:00:00")


def test_screening_settings_allow_the_named_server_only_in_addition() -> None:
    base = Settings(fhir={"allowed_servers": ["https://ehr.example.org/fhir"]})
    settings = screening_settings(base, "HTTP://127.0.0.1:8091/fhir/", budget_s=7)
    assert settings.fhir.allowed_servers == ["https://ehr.example.org/fhir", "http://127.0.0.1:8091/fhir"]
    assert settings.fhir.budget_s == settings.fhir.request_timeout_s == 7
    assert base.fhir.allowed_servers == ["https://ehr.example.org/fhir"]


def test_render_cards_shows_indicator_rule_evidence_and_order() -> None:
    text = render_cards([CARD], "for patient p1")
    assert text.splitlines()[0] == "1 card for patient p1"
    assert "CRITICAL R1   Suspected MSCC: whole-spine MRI within 24 hours" in text
    assert "    - Urinary retention (recorded 2026-05-31)" in text
    assert "    Suggestion: Order whole-spine MRI (recommended)" in text
    assert "create ServiceRequest: MRI of whole spine, priority stat" in text
    assert "Source: NICE NG234 <https://www.nice.org.uk/guidance/ng234>" in text
    assert render_cards([], "for patient p1") == "0 cards for patient p1"


def test_json_and_exit_codes() -> None:
    assert orjson.loads(render_cards_json([CARD])) == {"cards": [CARD]}
    assert cards_exit_code([CARD]) == CARDS
    assert cards_exit_code([]) == NO_CARDS


def test_unreachable_server_is_a_clear_412(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MSCC_STORE__URL", f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}")
    monkeypatch.setenv("MSCC_MODE", "development")
    code = main(["screen", "--fhir-server", "http://127.0.0.1:9/fhir", "--patient", "p1", "--budget", "2"])
    err = capsys.readouterr().err
    assert code == FAILURE
    assert "(HTTP 412)" in err
    assert "prefetch key 'patient': FHIR server unreachable (ConnectError)" in err
    assert "Traceback" not in err


def test_bad_time_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["screen", "--fhir-server", "http://127.0.0.1:9/fhir", "--patient", "p1", "--at", "yesterday"]) == USAGE
    assert "error: --at" in capsys.readouterr().err
