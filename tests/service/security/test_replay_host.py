"""The replay cache the worker processes of one host share: a SQLite file."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from cds_hooks.errors import ServiceUnavailable
from service.security.replay import HostReplayCache

pytestmark = pytest.mark.anyio


async def test_first_use_then_replay_across_two_caches_on_one_file(tmp_path: Path) -> None:
    first, second = HostReplayCache(tmp_path / "jti.sqlite3"), HostReplayCache(tmp_path / "jti.sqlite3")
    key = uuid.uuid4().hex
    try:
        assert await first.first_use(key, 60)
        assert not await second.first_use(key, 60)
        assert not await first.first_use(key, 60)
        assert await second.first_use(uuid.uuid4().hex, 60)
    finally:
        await first.aclose()
        await second.aclose()


async def test_an_id_is_forgotten_once_its_token_has_expired(tmp_path: Path) -> None:
    now = [1_000.0]
    cache = HostReplayCache(tmp_path / "jti.sqlite3", clock=lambda: now[0])
    try:
        assert await cache.first_use("a", 30)
        now[0] += 29
        assert not await cache.first_use("a", 30)
        now[0] += 2
        assert await cache.first_use("a", 30)
    finally:
        await cache.aclose()


async def test_expired_ids_are_purged(tmp_path: Path) -> None:
    now = [1_000.0]
    cache = HostReplayCache(tmp_path / "jti.sqlite3", clock=lambda: now[0])
    try:
        for number in range(HostReplayCache.PURGE_EVERY - 1):
            assert await cache.first_use(f"old-{number}", 10)
        now[0] += 60
        assert await cache.first_use("new", 10)  # the purging insert
        rows = cache._database().execute("SELECT count(*) FROM jti").fetchone()[0]
    finally:
        await cache.aclose()
    assert rows == 1


async def test_an_unusable_file_is_a_503_not_a_401(tmp_path: Path) -> None:
    # A folder where the file should be: SQLite cannot open it, whoever runs the test.
    (tmp_path / "jti.sqlite3").mkdir()
    with pytest.raises(ServiceUnavailable):
        await HostReplayCache(tmp_path / "jti.sqlite3").first_use("a", 60)
