"""Store settings: production needs a pseudonym key; migrations at start-up by mode and backend."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from service.settings import Settings
from service.store.settings import StoreSettings, default_store_url

KEY = "4f9c2d7e8a1b3c5d6e7f8091a2b3c4d5"
POSTGRES = "postgresql+asyncpg://mscc:s3cret-password@db.example.org:5432/mscc"


def production(**store: object) -> Settings:
    """Production settings that are otherwise safe, so only the store can make them fail."""
    return Settings(
        mode="production",
        public_base_url="https://cds.example.org",
        auth={"issuers": [{"issuer": "https://ehr.example.org", "jku": ["https://ehr.example.org/jwks.json"]}]},
        store=store,
    )


def test_production_refuses_to_start_without_a_pseudonym_key() -> None:
    with pytest.raises(ValidationError, match=r"store\.pseudonym_key is required in production"):
        production(url=POSTGRES)


def test_production_starts_with_a_pseudonym_key() -> None:
    settings = production(url=POSTGRES, pseudonym_key=KEY)

    assert settings.store.pseudonym_key == SecretStr(KEY)


def test_development_needs_no_key() -> None:
    assert Settings(mode="development").store.pseudonym_key is None


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        StoreSettings(pseudonym_key="too-short")


@pytest.mark.parametrize("url", ["sqlite:///x.sqlite3", "postgresql://db/mscc", "mysql+aiomysql://db/mscc", "nope"])
def test_only_the_tested_async_drivers_are_accepted(url: str) -> None:
    with pytest.raises(ValidationError, match=r"store\.url"):
        StoreSettings(url=url)


def test_the_database_password_never_shows() -> None:
    store = StoreSettings(url=POSTGRES)

    assert "s3cret-password" not in repr(store)
    assert "s3cret-password" not in str(Settings(store=store))


@pytest.mark.parametrize(
    ("url", "mode", "setting", "migrates"),
    [
        (default_store_url(), "development", None, True),
        (default_store_url(), "production", None, True),
        (POSTGRES, "development", None, True),
        (POSTGRES, "production", None, False),
        (POSTGRES, "production", True, True),
        (default_store_url(), "development", False, False),
    ],
)
def test_migration_at_start_up(url: str, mode: str, setting: bool | None, migrates: bool) -> None:
    store = StoreSettings(url=url, migrate_on_start=setting)

    assert store.should_migrate_on_start(mode) is migrates  # type: ignore[arg-type]


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSCC_STORE__URL", POSTGRES)
    monkeypatch.setenv("MSCC_STORE__RETENTION_DAYS", "30")
    monkeypatch.setenv("MSCC_STORE__PSEUDONYM_KEY", KEY)

    store = Settings().store

    assert (store.url.get_secret_value(), store.retention_days) == (POSTGRES, 30)
    assert store.pseudonym_key == SecretStr(KEY)
