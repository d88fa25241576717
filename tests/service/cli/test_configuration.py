"""Configuration problems on the command line: one line each, naming the variable, never a secret; exit 2."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.cli import main
from service.cli.configuration import variable_name
from service.cli.exitcodes import USAGE

pytestmark = pytest.mark.usefixtures("clean_mscc_environment")

SECRET = "s3cr3t-Pa55w0rd"


def problems(capsys: pytest.CaptureFixture[str]) -> list[str]:
    err = capsys.readouterr().err
    assert SECRET not in err
    assert "Traceback" not in err and "pydantic" not in err
    return err.splitlines()


def test_a_short_pseudonym_key_names_the_variable_and_not_the_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MSCC_STORE__PSEUDONYM_KEY", SECRET)
    assert main(["migrate"]) == USAGE
    assert problems(capsys) == [
        "mscc-cds migrate: MSCC_STORE__PSEUDONYM_KEY: store.pseudonym_key needs at least 32 characters"
    ]


def test_a_bad_database_url_never_shows_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MSCC_STORE__URL", f"mysql://mscc:{SECRET}@db.example.org/mscc")
    monkeypatch.setenv("MSCC_AUTH__REPLAY_REDIS_URL", f"http://:{SECRET}@redis.example.org")
    assert main(["serve"]) == USAGE
    lines = problems(capsys)
    assert sorted(lines) == [
        "mscc-cds serve: MSCC_AUTH__REPLAY_REDIS_URL: replay_redis_url must be a redis://, rediss:// or unix:// URL",
        "mscc-cds serve: MSCC_STORE__URL: store.url must use one of sqlite+aiosqlite, postgresql+asyncpg, not mysql",
    ]


def test_text_where_json_is_needed_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MSCC_FHIR__ALLOWED_SERVERS", "https://fhir.example.org/R4")
    assert main(["report", "--since", "2026-01-01"]) == USAGE
    (line,) = problems(capsys)
    assert line.startswith("mscc-cds report: MSCC_FHIR__ALLOWED_SERVERS: expected JSON (a list)")


def test_production_lists_every_problem_on_its_own_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MSCC_MODE", "production")
    monkeypatch.setenv("MSCC_FHIR__ALLOWED_SERVERS", '["http://fhir.example.org/R4"]')
    monkeypatch.setenv("MSCC_STORE__URL", f"postgresql+asyncpg://mscc:{SECRET}@db.example.org/mscc")
    assert main(["serve"]) == USAGE
    lines = problems(capsys)
    named = [line.removeprefix("mscc-cds serve: ").split(":", 1)[0] for line in lines]
    assert named == [
        "MSCC_AUTH__ISSUERS",
        "MSCC_PUBLIC_BASE_URL",
        "MSCC_FHIR__ALLOWED_SERVERS",
        "MSCC_STORE__PSEUDONYM_KEY",
    ]
    assert all(line.endswith("(MSCC_MODE=production)") for line in lines)


def test_a_wrong_type_says_what_is_expected(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MSCC_FHIR__BUDGET_S", "soon")
    assert main(["migrate"]) == USAGE
    assert problems(capsys) == [
        "mscc-cds migrate: MSCC_FHIR__BUDGET_S: Input should be a valid number, unable to parse string as a number"
    ]


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.text("abcxyz_", min_size=1, max_size=8), st.integers(0, 99)), min_size=1, max_size=5))
def test_variable_names_follow_the_nested_delimiter(loc: list[int | str]) -> None:
    name = variable_name(tuple(loc))
    assert name.startswith("MSCC_")
    fields = []
    for part in loc:
        if isinstance(part, int):
            break
        fields.append(part.upper())
    assert name.startswith("MSCC_" + "__".join(fields))
    # List positions and what lies below them follow, never joined with the delimiter.
    assert name.count("[") == sum(isinstance(part, int) for part in loc)
