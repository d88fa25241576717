"""``mscc-cds migrate``: brings a store to head, idempotently; ``--sql`` only prints."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from service.cli import main
from service.store.schema import head_revision


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        return {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_migrate_creates_the_schema_and_is_idempotent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nested" / "store.sqlite3"
    url = f"sqlite+aiosqlite:///{path}"

    assert main(["migrate", "--db", url]) == 0
    assert main(["migrate", "--db", url]) == 0

    out = capsys.readouterr().out
    assert out.count(f"is at revision {head_revision()}") == 2
    assert {"audit_events", "audit_rule_results", "audit_cards", "feedback", "alembic_version"} <= tables(path)


def test_migrate_uses_the_configured_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "configured.sqlite3"
    monkeypatch.setenv("MSCC_STORE__URL", f"sqlite+aiosqlite:///{path}")

    assert main(["migrate"]) == 0

    assert "feedback" in tables(path)


def test_migrate_sql_prints_without_touching_the_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "untouched.sqlite3"

    assert main(["migrate", "--db", f"sqlite+aiosqlite:///{path}", "--sql"]) == 0

    out = capsys.readouterr().out
    assert "CREATE TABLE audit_events" in out and "CREATE TABLE feedback" in out
    assert not path.exists()


def test_migrate_reports_an_unreachable_database(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--db", "postgresql+asyncpg://mscc:hunter2-password@127.0.0.1:1/mscc"]) == 1

    err = capsys.readouterr().err
    assert "mscc-cds migrate: postgresql+asyncpg://mscc:***@127.0.0.1:1/mscc" in err
    assert "hunter2-password" not in err
