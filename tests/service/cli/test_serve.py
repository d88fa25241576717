"""``mscc-cds serve``: the startup heap is frozen before the server starts."""

from __future__ import annotations

import argparse
import gc
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from service.cli import main, serve
from tests.processes import free_port


@pytest.fixture
def unfrozen() -> Iterator[None]:
    threshold = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("unfrozen")
def test_freezing_exempts_every_live_object_from_later_collections() -> None:
    live = len(gc.get_objects())
    frozen = serve.freeze_startup_heap()
    assert frozen >= live // 2  # the test process's own heap, at least
    assert gc.get_freeze_count() == frozen
    assert len(gc.get_objects()) < live // 10  # a full collection no longer walks them
    assert gc.get_threshold()[2] == 1000  # and full collections are rare: the parse trees of calls are not walked


@pytest.mark.usefixtures("unfrozen")
def test_serve_freezes_the_heap_after_building_the_app_and_before_serving(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Server.run would block: record what the process looked like when it was called.
    seen: dict[str, Any] = {}

    def fake_run(server: uvicorn.Server, sockets: list[socket.socket]) -> None:
        app = server.config.app
        seen["frozen"] = gc.get_freeze_count()
        seen["app"] = app
        # Frozen objects are no longer among those a collection walks: the app built by
        # run() is one of them, so the heap was frozen after the app was built.
        seen["app walked"] = any(item is app for item in gc.get_objects())
        seen["listening"] = [sock.getsockname() for sock in sockets]
        for sock in sockets:
            sock.close()

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    monkeypatch.setenv("MSCC_STORE__URL", f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}")
    monkeypatch.delenv("MSCC_METRICS_PORT", raising=False)
    # One process: several workers would be forks of the test runner (test_workers.py starts them for real).
    monkeypatch.setenv("MSCC_WORKERS", "1")
    port = free_port()
    assert serve.run(argparse.Namespace(host="127.0.0.1", port=port)) == 0
    assert seen["listening"] == [("127.0.0.1", port)]
    assert seen["frozen"] > 0
    assert hasattr(seen["app"], "router")
    assert seen["app walked"] is False


def test_a_busy_port_is_one_line_naming_the_port_and_the_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("MSCC_STORE__URL", f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"port {port} on 127.0.0.1 is already in use" in err and "MSCC_PORT" in err


def test_a_busy_metrics_port_names_its_own_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        monkeypatch.setenv("MSCC_METRICS_PORT", str(taken.getsockname()[1]))
        assert main(["serve", "--port", str(free_port())]) == 1
    assert "MSCC_METRICS_PORT" in capsys.readouterr().err
