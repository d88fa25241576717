"""``mscc-cds serve``: the startup heap is frozen before the server starts."""

from __future__ import annotations

import argparse
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.cli import serve


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen")
def test_freezing_exempts_every_live_object_from_later_collections() -> None:
    live = len(gc.get_objects())
    frozen = serve.freeze_startup_heap()
    assert frozen >= live // 2  # the test process's own heap, at least
    assert gc.get_freeze_count() == frozen
    assert len(gc.get_objects()) < live // 10  # a full collection no longer walks them


@pytest.mark.usefixtures("unfrozen")
def test_serve_freezes_the_heap_after_building_the_app_and_before_serving(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # uvicorn.run would block: record what the process looked like when it was called.
    seen: dict[str, Any] = {}

    def fake_run(app: Any, **options: Any) -> None:
        seen["frozen"] = gc.get_freeze_count()
        seen["app"] = app
        # Frozen objects are no longer among those a collection walks: the app built by
        # run() is one of them, so the heap was frozen after the app was built.
        seen["app walked"] = any(item is app for item in gc.get_objects())

    monkeypatch.setattr(serve.uvicorn, "run", fake_run)
    monkeypatch.setenv("MSCC_STORE__URL", f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}")
    monkeypatch.delenv("MSCC_METRICS_PORT", raising=False)
    assert serve.run(argparse.Namespace(host="127.0.0.1", port=8080)) == 0
    assert seen["frozen"] > 0
    assert hasattr(seen["app"], "router")
    assert seen["app walked"] is False
