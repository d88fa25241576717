"""``mscc-cds report``: the committee's table on stdout and a readable PNG, from a seeded store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import numpy
import pytest
from matplotlib import image

from cds_hooks.models import FeedbackItem, FeedbackRequest
from service.audit import AuditEvent, CardRecord
from service.cli import main
from service.clinical.outcome import RuleOutcome
from service.store.audit import write_audit_events
from service.store.db import create_engine
from service.store.feedback import FeedbackStore
from service.store.pseudonym import Pseudonymiser

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SYSTEM = "https://fhir.mscc-cds.org/CodeSystem/override-reason"


def event(recorded_at: datetime, rules: dict[str, str], cards: dict[str, str]) -> AuditEvent:
    return AuditEvent(
        recorded_at=recorded_at,
        hook_instance="7a3c9f1e-0d4b-4c2a-9e8f-1b2c3d4e5f60",
        service_id="mscc-patient-view",
        hook="patient-view",
        knowledge_version="0123456789abcdef",
        patient_id="s01-patient",
        rules=[RuleOutcome(rule_id=rule, rule_version="1.0.0", result=result) for rule, result in rules.items()],
        cards=[CardRecord(uuid=uuid, rule_id=rule, indicator="critical") for uuid, rule in cards.items()],
        prefetch={"patient": "present", "conditions": "present"},
        fhir_queries={},
        client_iss=None,
        client_tenant=None,
        client_jti=None,
        latency_ms=5.0,
        status=200,
    )


async def seed(url: str) -> None:
    engine = create_engine(url)
    try:
        events = [
            event(datetime(2026, 5, 3, 8, tzinfo=UTC), {"R1": "fired", "R2": "not_fired"}, {"a1": "R1"}),
            # The last day of the period counts whole.
            event(datetime(2026, 5, 31, 23, tzinfo=UTC), {"R1": "fired", "R2": "fired"}, {"a2": "R1", "b1": "R2"}),
            event(datetime(2026, 6, 1, 0, tzinfo=UTC), {"R1": "fired"}, {"a3": "R1"}),
        ]
        await write_audit_events(engine, events, Pseudonymiser(b"k" * 32), "0.1.0")
        answers = FeedbackRequest(
            feedback=[
                FeedbackItem.model_validate(
                    {
                        "card": "a1",
                        "outcome": "overridden",
                        "outcomeTimestamp": "2026-05-03T08:05:00Z",
                        "overrideReason": {
                            "reason": {"system": SYSTEM, "code": "already-imaged", "display": "Already imaged"}
                        },
                    }
                ),
                FeedbackItem.model_validate(
                    {
                        "card": "a2",
                        "outcome": "accepted",
                        "outcomeTimestamp": "2026-05-31T23:05:00Z",
                        "acceptedSuggestions": [{"id": "a2-mri"}],
                    }
                ),
                FeedbackItem(card="b1", outcome="overridden", outcomeTimestamp="2026-05-31T23:06:00Z"),
            ]
        )
        await FeedbackStore(engine).record_feedback("mscc-patient-view", answers, None)
    finally:
        await engine.dispose()


@pytest.fixture
def store_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}"
    assert main(["migrate", "--db", url]) == 0
    capsys.readouterr()
    asyncio.run(seed(url))
    return url


EXPECTED = """\
MSCC CDS alert-fatigue report: cards shown 2026-05-01 to 2026-05-31 (UTC)
Outcome of a card = its latest feedback; reasons are those of the overriding feedback.

Rule   Evaluated  Shown  Accepted  Overridden  No feedback  Overridden %
-----  ---------  -----  --------  ----------  -----------  ------------
R1             2      2         1           1            0          50.0
    overridden: Already imaged [already-imaged]: 1
R2             2      1         0           1            0         100.0
    overridden: no reason given: 1
-----  ---------  -----  --------  ----------  -----------  ------------
Total          4      3         1           2            0          66.7

Feedback received in the period on cards not in the audit trail: 0
"""


def test_report_prints_the_table_and_draws_the_chart(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chart = tmp_path / "fatigue.png"

    code = main(["report", "--since", "2026-05-01", "--until", "2026-05-31", "--db", store_url, "--png", str(chart)])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert out == EXPECTED
    assert f"chart written to {chart}" in err
    data = chart.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 20_000
    pixels = image.imread(chart)
    height, width = pixels.shape[:2]
    assert width >= 1200 and height >= 300
    colours = {tuple(numpy.round(pixel[:3] * 255).astype(int)) for pixel in pixels.reshape(-1, pixels.shape[2])}
    # The accepted, overridden and override-reason bars are all drawn.
    assert {(0x00, 0x9E, 0x73), (0xD5, 0x5E, 0x00), (0xE6, 0x9F, 0x00)} <= colours


def test_report_reads_the_configured_store(
    store_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MSCC_STORE__URL", store_url)

    assert main(["report", "--since", "2026-05-01", "--until", "2026-05-31"]) == 0

    assert capsys.readouterr().out == EXPECTED


def test_period_after_the_data_reports_zero(store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chart = tmp_path / "empty.png"

    assert (
        main(["report", "--since", "2026-07-01", "--until", "2026-07-31", "--db", store_url, "--png", str(chart)]) == 0
    )

    out = capsys.readouterr().out
    assert "Total          0      0         0           0            0             -" in out
    assert chart.read_bytes().startswith(PNG_MAGIC)


def test_until_before_since_is_a_usage_error(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--since", "2026-05-31", "--until", "2026-05-01", "--db", store_url]) == 2

    assert "--until is before --since" in capsys.readouterr().err


def test_a_bad_date_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--since", "01/05/2026"])

    assert exit_info.value.code == 2
    assert "not a date (YYYY-MM-DD)" in capsys.readouterr().err


def test_a_missing_database_file_is_reported_not_created(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "typo.sqlite3"

    assert main(["report", "--since", "2026-05-01", "--db", f"sqlite+aiosqlite:///{missing}"]) == 1

    assert f"no store at {missing}" in capsys.readouterr().err
    assert not missing.exists()


def test_an_unmigrated_store_asks_for_migrate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.sqlite3"
    empty.touch()

    assert main(["report", "--since", "2026-05-01", "--db", f"sqlite+aiosqlite:///{empty}"]) == 1

    assert "run `mscc-cds migrate`" in capsys.readouterr().err


def test_an_unreachable_database_fails_plainly(capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql+asyncpg://mscc:hunter2-password@127.0.0.1:1/mscc"

    assert main(["report", "--since", "2026-05-01", "--db", url]) == 1

    err = capsys.readouterr().err
    assert "cannot read postgresql+asyncpg://mscc:***@127.0.0.1:1/mscc" in err
    assert "hunter2-password" not in err


def test_report_and_migrate_find_the_default_store_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MSCC_STORE__URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    monkeypatch.chdir(tmp_path / "one")
    assert main(["migrate"]) == 0
    monkeypatch.chdir(tmp_path / "two")
    assert main(["report", "--since", "2026-05-01", "--until", "2026-05-31"]) == 0
    out, err = capsys.readouterr()
    assert str(tmp_path / "data" / "mscc-cds" / "mscc-cds.sqlite3") in err
    assert "Total          0" in out


def test_png_without_matplotlib_says_how_to_install_it(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real_find_spec(name, *a)
    )
    code = main(["report", "--since", "2026-05-01", "--db", store_url, "--png", str(tmp_path / "x.png")])
    assert code == 1
    assert "pip install 'mscc-cds[report]'" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
