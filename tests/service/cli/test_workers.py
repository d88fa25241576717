"""The process model of ``mscc-cds serve``: several workers on one port, sharing what they must.

Real processes on loopback. Which worker takes a new connection is up to the kernel, so
the tests decide it: a worker stopped with SIGSTOP accepts nothing, and the other one
answers. No durations are asserted: only who answered, what, and in which order.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from service.cli.workers import available_cores
from tests.processes import free_port, start_service, stop, wait_until_up
from tests.servicepaths import service_path

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "profiles" / "examples" / "01-r1-neuro-urinary-retention.json"
PUBLIC_BASE_URL = "https://cds.example.org"
ISSUER = "https://ehr.example.org"
KID = "workers-test-key"


@dataclass(frozen=True)
class Group:
    url: str
    supervisor: int
    workers: tuple[int, ...]
    metrics_url: str


def children(pid: int) -> tuple[int, ...]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(child) for child in task.read_text().split()]
    return tuple(sorted(found))


@pytest.fixture(scope="module")
def signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def token(key: ec.EllipticCurvePrivateKey, path: str) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": PUBLIC_BASE_URL + path, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    return jwt.encode(claims, key, algorithm="ES384", headers={"kid": KID, "typ": "JWT"})


@contextmanager
def worker_group(workdir: Path, **settings: str) -> Iterator[Group]:
    port, metrics_port = free_port(), free_port()
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("MSCC_") and "proxy" not in name.lower()
    } | {
        "MSCC_MODE": "development",
        "MSCC_LOG_LEVEL": "WARNING",
        "MSCC_WORKERS": "2",
        "MSCC_METRICS_PORT": str(metrics_port),
        "MSCC_STORE__URL": f"sqlite+aiosqlite:///{workdir / 'store.sqlite3'}",
        "MSCC_STORE__SPOOL_DIR": str(workdir / "spool"),
        "MSCC_STORE__PSEUDONYM_KEY": "c" * 64,
        **settings,
    }
    log = workdir / "service.log"
    process = start_service(port, env, log, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/readyz", process, log)
        workers = children(process.pid)
        yield Group(url, process.pid, workers, f"http://127.0.0.1:{metrics_port}/metrics")
    finally:
        for pid in children(process.pid):
            os.kill(pid, signal.SIGCONT)
        stop(process)


@contextmanager
def only(group: Group, worker: int) -> Iterator[None]:
    """Every other worker stopped (SIGSTOP): a new connection can only be accepted by ``worker``."""
    others = [pid for pid in group.workers if pid != worker]
    for pid in others:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in others:
            os.kill(pid, signal.SIGCONT)


def fresh_get(url: str, **headers: str) -> httpx.Response:
    """One call on a connection of its own (a new connection is what a worker accepts)."""
    with httpx.Client(timeout=30) as client:
        return client.get(url, headers=headers)


def test_available_cores_follow_the_cgroup_cpu_limit(tmp_path: Path) -> None:
    own = len(os.sched_getaffinity(0))
    limit = tmp_path / "cpu.max"
    limit.write_text("max 100000\n")
    assert available_cores(limit) == own
    limit.write_text("50000 100000\n")  # half a core: still one worker
    assert available_cores(limit) == 1
    limit.write_text(f"{own * 300000} 100000\n")  # a limit above the affinity does not add cores
    assert available_cores(limit) == own
    assert available_cores(tmp_path / "absent") == own


def test_two_workers_serve_one_port_and_a_stopped_supervisor_takes_them_along(tmp_path: Path) -> None:
    with worker_group(tmp_path) as group:
        assert len(group.workers) == 2
        for worker in group.workers:
            with only(group, worker):
                assert fresh_get(f"{group.url}/livez").json() == {"status": "ok"}
                assert fresh_get(f"{group.url}/cds-services").status_code == 200
        scrape = httpx.get(group.metrics_url, timeout=10).text
        # Both workers' calls are counted on the one scrape endpoint the supervisor serves.
        discovery = [line for line in scrape.splitlines() if line.startswith("cds_requests_total{")]
        assert any('route="/cds-services"' in line and line.endswith(" 2.0") for line in discovery), discovery
    for pid in (group.supervisor, *group.workers):
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_a_token_used_with_one_worker_is_refused_by_the_other(
    tmp_path: Path, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    jwk = ECAlgorithm.to_jwk(signing_key.public_key(), as_dict=True) | {"kid": KID, "alg": "ES384", "use": "sig"}
    issuers = json.dumps([{"issuer": ISSUER, "jwks": {"keys": [jwk]}}])
    with worker_group(tmp_path, MSCC_PUBLIC_BASE_URL=PUBLIC_BASE_URL, MSCC_AUTH__ISSUERS=issuers) as group:
        first, second = group.workers
        bearer = f"Bearer {token(signing_key, '/cds-services')}"
        with only(group, first):
            accepted = fresh_get(f"{group.url}/cds-services", Authorization=bearer)
        with only(group, second):
            replayed = fresh_get(f"{group.url}/cds-services", Authorization=bearer)
            fresh = fresh_get(
                f"{group.url}/cds-services", Authorization=f"Bearer {token(signing_key, '/cds-services')}"
            )
    assert accepted.status_code == 200
    assert replayed.status_code == 401 and replayed.json()["resourceType"] == "OperationOutcome"
    assert fresh.status_code == 200  # the second worker does verify tokens: only the replay is refused


def large_hook_call(observations: int) -> bytes:
    """Scenario 01 with ``observations`` more Observations under ``labs``: a long record to screen."""
    call: dict[str, Any] = orjson.loads(EXAMPLE.read_bytes())
    labs = call["prefetch"]["labs"]
    template = labs["entry"][0]["resource"]
    for number in range(observations):
        resource = copy.deepcopy(template)
        resource["id"] = f"{template['id']}-copy-{number}"
        labs["entry"].append({"resource": resource})
    return orjson.dumps(call)


async def _call(port: int, request: bytes) -> bytes:
    """One HTTP/1.1 exchange on a connection of its own; the status line and headers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")),
            0,
        )
        await reader.readexactly(length)
        return head
    finally:
        writer.close()


async def livez_while_a_worker_is_held(group: Group, body: bytes) -> tuple[bytes, bytes, bool]:
    """A large hook call taken by one worker, which is then held mid-call; ``/livez`` meanwhile.

    Held with SIGSTOP: to everyone outside, a worker whose event loop is busy screening
    and a stopped one look the same (neither accepts nor answers), but a stopped one
    stays busy as long as the test needs, whatever the machine's speed.
    """
    port = int(group.url.rsplit(":", 1)[1])
    busy = group.workers[0]
    head = f"POST {service_path()} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    with only(group, busy):  # only the busy worker can take the large call
        large = asyncio.create_task(_call(port, head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body))
        await asyncio.sleep(0)  # connected and sending
        while not large.done() and not _connected_to(busy, port):
            await asyncio.sleep(0.01)
    os.kill(busy, signal.SIGSTOP)
    try:
        livez = await asyncio.wait_for(_call(port, b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), 60)
        large_pending = not large.done()
    finally:
        os.kill(busy, signal.SIGCONT)
    return livez.split(b"\r\n", 1)[0], (await large).split(b"\r\n", 1)[0], large_pending


def _connected_to(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds an accepted connection on ``port`` (its socket inodes against /proc/net/tcp)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    local = f":{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        # state 01: established; the accepted side has the service's port as its local address
        if fields[1].endswith(local) and fields[3] == "01" and fields[9] in inodes:
            return True
    return False


def test_livez_answers_while_a_worker_is_busy_with_a_large_hook(tmp_path: Path) -> None:
    body = large_hook_call(10_000)
    with worker_group(tmp_path) as group:
        livez, large, large_pending = asyncio.run(livez_while_a_worker_is_held(group, body))
    assert livez.endswith(b" 200 OK")
    assert large_pending  # /livez was answered while the large call was still in its worker's hands
    assert large.endswith(b" 200 OK")  # and that call completed once the worker went on
