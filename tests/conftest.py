"""Fixtures shared by the whole test tree; anything narrower lives in a subfolder's conftest."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service.store.settings import StoreSettings


@pytest.fixture(autouse=True, scope="session")
def private_data_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The default SQLite store ($XDG_DATA_HOME) and seed's record ($XDG_STATE_HOME): never the machine's."""
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("xdg-data"))
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("xdg-state"))


@pytest.fixture
def anyio_backend() -> str:
    """Run ``@pytest.mark.anyio`` tests on asyncio only: the service runs under uvicorn's asyncio loop."""
    return "asyncio"


@pytest.fixture
def clean_mscc_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No MSCC_* variable of the machine running the tests leaks into them."""
    for name in list(os.environ):
        if name.upper().startswith("MSCC_"):
            monkeypatch.delenv(name)


@pytest.fixture
def store_settings(tmp_path: Path) -> StoreSettings:
    """A throwaway SQLite store: the default one is a file in the user's data folder."""
    return StoreSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}")
