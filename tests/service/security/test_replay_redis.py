"""The Redis replay cache against a real redis-server (Debian's package), started on a free loopback port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from cds_hooks.errors import ServiceUnavailable
from service.app import create_app
from service.security.replay import RedisReplayCache
from service.security.settings import AuthSettings, TrustedIssuerSettings
from service.settings import Settings
from service.store.settings import StoreSettings

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

#: redis-server answers PING within milliseconds; this bounds a broken start.
_START_TIMEOUT_S = 10.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail("redis-server is not installed (Debian: apt-get install redis-server)")
    port = _free_port()
    workdir: Path = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            executable,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not _answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_first_use_then_replay(redis_url: str) -> None:
    cache = RedisReplayCache(redis_url)
    try:
        key = uuid.uuid4().hex
        assert await cache.first_use(key, 60)
        assert not await cache.first_use(key, 60)
        assert await cache.first_use(uuid.uuid4().hex, 60)
        assert await cache.ping() is None
    finally:
        await cache.aclose()


async def test_replicas_share_the_cache(redis_url: str) -> None:
    first, second = RedisReplayCache(redis_url), RedisReplayCache(redis_url)
    try:
        key = uuid.uuid4().hex
        assert await first.first_use(key, 60)
        assert not await second.first_use(key, 60)
    finally:
        await first.aclose()
        await second.aclose()


async def test_entries_expire_with_the_token(redis_url: str) -> None:
    cache = RedisReplayCache(redis_url)
    try:
        key = uuid.uuid4().hex
        assert await cache.first_use(key, 1)
        # Redis expires keys on its own clock; poll instead of a fixed sleep.
        deadline = time.monotonic() + 5
        while not await cache.first_use(key, 1):
            assert time.monotonic() < deadline, "the key never expired"
            await anyio.sleep(0.1)
    finally:
        await cache.aclose()


async def test_an_unreachable_redis_is_a_503_not_a_401() -> None:
    cache = RedisReplayCache(f"redis://127.0.0.1:{_free_port()}/0", timeout_s=0.2)
    try:
        with pytest.raises(ServiceUnavailable):
            await cache.first_use("key", 60)
        assert (await cache.ping() or "").startswith("replay cache unreachable")
    finally:
        await cache.aclose()


async def test_the_app_uses_redis_when_configured(
    redis_url: str,
    client_jwks: dict[str, Any],
    store_settings: StoreSettings,
    token_for: Any,
    serve: Any,
) -> None:
    settings = Settings(
        public_base_url="https://cds.example.org",
        auth=AuthSettings(
            issuers=[TrustedIssuerSettings(issuer="https://ehr.example.org", jwks=client_jwks)],
            replay_redis_url=redis_url,
        ),
        store=store_settings,
    )
    token = token_for("/cds-services")
    # Two app instances stand for two replicas: the second one sees the first one's jti.
    first, second = create_app(settings), create_app(settings)
    async with serve(first) as client_one, serve(second) as client_two:
        headers = {"Authorization": f"Bearer {token}"}
        assert (await client_one.get("/cds-services", headers=headers)).status_code == 200
        replayed: httpx.Response = await client_two.get("/cds-services", headers=headers)
        assert replayed.status_code == 401


async def test_readiness_checks_the_configured_redis(
    redis_url: str, client_jwks: dict[str, Any], store_settings: StoreSettings, serve: Any
) -> None:
    def settings(url: str) -> Settings:
        auth = AuthSettings(
            issuers=[TrustedIssuerSettings(issuer="https://ehr.example.org", jwks=client_jwks)], replay_redis_url=url
        )
        return Settings(public_base_url="https://cds.example.org", auth=auth, store=store_settings)

    async with serve(create_app(settings(redis_url))) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
    unreachable = f"redis://127.0.0.1:{_free_port()}/0"
    async with serve(create_app(settings(unreachable))) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["problems"] == {"replay_cache": "replay cache unreachable (ConnectionError)"}
        assert "127.0.0.1" not in ready.text  # no address of the infrastructure in a public answer


async def test_readiness_has_no_replay_check_without_redis(
    client_jwks: dict[str, Any], store_settings: StoreSettings, serve: Any
) -> None:
    auth = AuthSettings(issuers=[TrustedIssuerSettings(issuer="https://ehr.example.org", jwks=client_jwks)])
    app = create_app(Settings(public_base_url="https://cds.example.org", auth=auth, store=store_settings))
    async with serve(app) as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 200 and "problems" not in ready.json()
