"""Where feedback and the audit trail are kept, how patients are pseudonymised, and for how long."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from service.store.db import sqlite_file
from service.store.spool import FsyncPolicy

__all__ = ["MIN_PSEUDONYM_KEY_LENGTH", "SUPPORTED_DRIVERS", "StoreSettings", "default_store_url"]
#: The async drivers the store is tested with.
SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
#: 32 characters: the 128 bits an HMAC key needs at the very least, as text (hex keys from
#: ``openssl rand -hex 32`` have 64).
MIN_PSEUDONYM_KEY_LENGTH = 32


def default_store_url() -> str:
    """A SQLite file in the user's data folder ($XDG_DATA_HOME, else ~/.local/share).

    One absolute place, whatever the working directory: ``serve`` from a fresh clone works,
    and ``report`` or ``migrate`` run from elsewhere find the same store. The container
    image points MSCC_STORE__URL at its /data volume instead.
    """
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return f"sqlite+aiosqlite:///{data_home / 'mscc-cds' / 'mscc-cds.sqlite3'}"


class StoreSettings(BaseModel):
    """The database behind the feedback endpoint and the audit trail."""

    #: SQLAlchemy URL: sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER:PASSWORD@HOST:5432/DB.
    #: Default: ~/.local/share/mscc-cds/mscc-cds.sqlite3 ($XDG_DATA_HOME/mscc-cds/... when set), whatever
    #: the working directory, so `serve`, `migrate` and `report` find the same file.
    url: SecretStr = Field(default_factory=lambda: SecretStr(default_store_url()))
    #: Run `alembic upgrade head` at start-up. Unset: yes in development and for SQLite,
    #: no for PostgreSQL in production (run `mscc-cds migrate` once per release instead).
    migrate_on_start: bool | None = None
    #: HMAC-SHA256 key that pseudonymises patient ids in the audit trail (at least 32 characters,
    #: e.g. `openssl rand -hex 32`). Required in production; development uses a random key per process.
    pseudonym_key: SecretStr | None = None
    #: Audit records and feedback older than this many days are deleted (at start-up and every 6 hours).
    retention_days: int = Field(default=400, ge=1)
    #: Folder of the audit spool, where each audit record is written before its hook answers
    #: (local disk, one per host; see docs/audit.md). Unset: next to a SQLite file
    #: (`<file>.audit-spool`), else ./mscc-cds-audit-spool in the working directory.
    spool_dir: Path | None = None
    #: `always`: fdatasync each spooled record (group-committed) before the hook answers, so it
    #: survives a power cut; `never`: the kernel writes it back later, so it survives a crash of
    #: the process but not of the machine. Costs: docs/audit.md.
    audit_fsync: FsyncPolicy = "always"
    #: Audit records per database transaction when the writer moves them out of the spool.
    audit_batch_size: int = Field(default=200, ge=1, le=10_000)
    #: Attempts at one audit record after transient database errors before it is dead-lettered
    #: (an unreachable database is waited for without limit).
    audit_retry_attempts: int = Field(default=5, ge=1, le=100)

    #: Password of the database user, kept apart from MSCC_STORE__URL so that the URL can sit in
    #: plain configuration and the password in a secret file (/run/secrets/MSCC_STORE__PASSWORD).
    #: Replaces any password in the URL.
    password: SecretStr | None = None

    @model_validator(mode="after")
    def _password_into_url(self) -> Self:
        if self.password is not None:
            url = make_url(self.url.get_secret_value()).set(password=self.password.get_secret_value())
            self.url = SecretStr(url.render_as_string(hide_password=False))
        return self

    @field_validator("url")
    @classmethod
    def _supported_url(cls, value: SecretStr) -> SecretStr:
        try:
            url = make_url(value.get_secret_value())
        except ArgumentError:
            raise ValueError("store.url is not a database URL") from None
        if url.drivername not in SUPPORTED_DRIVERS:
            raise ValueError(f"store.url must use one of {', '.join(SUPPORTED_DRIVERS)}, not {url.drivername}")
        return value

    @field_validator("pseudonym_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_PSEUDONYM_KEY_LENGTH:
            raise ValueError(f"store.pseudonym_key needs at least {MIN_PSEUDONYM_KEY_LENGTH} characters")
        return value

    @property
    def is_sqlite(self) -> bool:
        return make_url(self.url.get_secret_value()).get_backend_name() == "sqlite"

    def spool_folder(self) -> Path:
        """Where the audit spool lives (see ``spool_dir``)."""
        if self.spool_dir is not None:
            return self.spool_dir
        database = sqlite_file(self.url.get_secret_value())
        if database is not None:
            return database.with_name(f"{database.name}.audit-spool")
        return Path("mscc-cds-audit-spool")

    def should_migrate_on_start(self, mode: Literal["development", "production"]) -> bool:
        if self.migrate_on_start is not None:
            return self.migrate_on_start
        # A SQLite file belongs to this one process, so nobody else can migrate it; a shared
        # PostgreSQL in production is migrated once per release by `mscc-cds migrate`.
        return mode == "development" or self.is_sqlite

    def production_problems(self) -> list[str]:
        """Why these settings are unsafe in production mode (empty when they are fine)."""
        if self.pseudonym_key is None:
            return [
                "MSCC_STORE__PSEUDONYM_KEY: store.pseudonym_key is required in production (e.g. openssl rand -hex 32)"
            ]
        return []
