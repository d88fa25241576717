"""Settings from the environment: the MSCC_ prefix, the "__" nesting, defaults and overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.settings import DEFAULT_PROFILES_DIR, LimitSettings, Settings, load_settings

REPO_ROOT = Path(__file__).resolve().parents[2]


# No MSCC_* variable of the machine running the tests leaks into them.
pytestmark = pytest.mark.usefixtures("clean_mscc_environment")


def test_defaults() -> None:
    settings = load_settings()
    assert settings.mode == "development"
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.public_base_url is None
    assert settings.profiles_dir == DEFAULT_PROFILES_DIR == REPO_ROOT / "profiles"
    assert settings.log_level == "INFO"
    assert settings.limits == LimitSettings()
    assert settings.limits.max_body_bytes == 16 * 1024 * 1024
    assert settings.limits.max_json_depth == 64
    assert settings.limits.max_prefetch_entries == 20_000


def test_top_level_fields_read_the_mscc_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MSCC_HOST", "0.0.0.0")
    monkeypatch.setenv("MSCC_PORT", "9090")
    monkeypatch.setenv("MSCC_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("MSCC_PUBLIC_BASE_URL", "https://cds.example.org")
    monkeypatch.setenv("MSCC_PROFILES_DIR", str(tmp_path))
    settings = load_settings()
    assert (settings.host, settings.port, settings.log_level) == ("0.0.0.0", 9090, "DEBUG")
    assert str(settings.public_base_url).rstrip("/") == "https://cds.example.org"
    assert settings.profiles_dir == tmp_path


def test_variables_without_the_prefix_are_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9191")
    monkeypatch.setenv("HOST", "10.0.0.1")
    settings = load_settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)


def test_nested_groups_use_the_double_underscore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSCC_LIMITS__MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("MSCC_FHIR__BUDGET_S", "0.4")
    monkeypatch.setenv("MSCC_CLINICAL__CANCER_SCOPE", "any")
    settings = load_settings()
    assert settings.limits.max_body_bytes == 2048
    # the rest of a partly set group keeps its defaults
    assert settings.limits.max_json_depth == 64
    assert settings.fhir.budget_s == 0.4
    assert settings.clinical.cancer_scope == "any"


def test_explicit_overrides_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSCC_PORT", "9090")
    assert load_settings(port=7070).port == 7070


def test_the_environment_is_read_when_settings_are_built_not_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    before = load_settings().port
    monkeypatch.setenv("MSCC_PORT", "9393")
    assert (before, load_settings().port) == (8080, 9393)


def test_unknown_mscc_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSCC_NOT_A_SETTING", "x")
    assert load_settings().port == 8080


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [
        ("MSCC_PORT", "0", "port"),
        ("MSCC_PORT", "http", "port"),
        ("MSCC_MODE", "staging", "mode"),
        ("MSCC_LOG_LEVEL", "TRACE", "log_level"),
        ("MSCC_PUBLIC_BASE_URL", "cds.example.org", "public_base_url"),
        ("MSCC_LIMITS__MAX_BODY_BYTES", "10", "limits.max_body_bytes"),
        ("MSCC_LIMITS__MAX_JSON_DEPTH", "2", "limits.max_json_depth"),
    ],
)
def test_invalid_values_are_refused_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, field: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        load_settings()
    assert [".".join(str(part) for part in error["loc"]) for error in caught.value.errors()] == [field]


def test_settings_is_the_class_load_settings_builds() -> None:
    assert type(load_settings()) is Settings


def test_production_reports_every_unsafe_group_at_once() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(mode="production", fhir={"allowed_servers": ["http://ehr.example.org/fhir"]})
    message = str(caught.value)
    assert "production mode refuses" in message
    assert "issuer" in message  # security: no trusted JWT issuer
    assert "is not https" in message  # FHIR: a plain-http allowlist entry
    assert "pseudonym" in message  # store: no HMAC key for the audit trail


@pytest.mark.usefixtures("clean_mscc_environment")
def test_settings_come_from_files_named_like_the_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import service.settings

    (tmp_path / "MSCC_STORE__URL").write_text("postgresql+asyncpg://mscc@db.example.org:5432/mscc\n")
    (tmp_path / "MSCC_STORE__PASSWORD").write_text("p@ss/word:%\n")
    (tmp_path / "MSCC_STORE__PSEUDONYM_KEY").write_text("k" * 64)
    (tmp_path / "MSCC_FHIR__ALLOWED_SERVERS").write_text('["https://fhir.example.org/R4"]')
    (tmp_path / "..data").mkdir()  # Kubernetes' own bookkeeping in a mounted Secret
    monkeypatch.setattr(service.settings, "_SECRETS_DIR", tmp_path)
    monkeypatch.setenv("MSCC_FHIR__BUDGET_S", "0.3")  # the environment and the files combine
    settings = load_settings()
    from sqlalchemy.engine import make_url

    url = make_url(settings.store.url.get_secret_value())
    assert (url.username, url.password, url.host) == ("mscc", "p@ss/word:%", "db.example.org")
    assert settings.store.pseudonym_key is not None and settings.store.pseudonym_key.get_secret_value() == "k" * 64
    assert settings.fhir.allowed_servers == ["https://fhir.example.org/R4"]
    assert settings.fhir.budget_s == 0.3
    # The environment wins over a file.
    monkeypatch.setenv("MSCC_STORE__PSEUDONYM_KEY", "e" * 64)
    assert load_settings().store.pseudonym_key.get_secret_value() == "e" * 64  # type: ignore[union-attr]
