"""What the audit trail's durability costs a hook call: p50 and p99 latency, in process and over loopback HTTP.

From the repository root::

    .venv/bin/python -m bench.audit_latency --fsync always     # this code, fdatasync before each answer
    .venv/bin/python -m bench.audit_latency --fsync never      # this code, page cache only

and an older checkout from its own root, this checkout's ``bench`` found through ``PYTHONPATH``::

    cd /path/to/older/checkout
    PYTHONPATH=/path/to/this/checkout /path/to/this/checkout/.venv/bin/python -m bench.audit_latency --label before

Each run posts the scenario 01 hook call (``--calls`` times after ``--warmup`` calls, one
at a time, each with its own ``hookInstance``) to a SQLite-backed service whose store and
spool live in a fresh temporary folder: first in process (httpx over ASGI, lifespan
started), then to ``python -m service serve`` on a loopback port. Latency is measured by
the client around each call. Only public entry points are used (``create_app``, the
``MSCC_*`` environment, ``python -m service serve``), so the same script measures an
older checkout; settings that checkout does not know are ignored by it. Under ``-m`` the
working directory comes first on the path: the ``service`` measured (in process, and by
the server, started in the same folder) and the example call are that checkout's.
"""

from __future__ import annotations

# As a script (`python bench/audit_latency.py`) bench/ would be first on the path, and bench/http.py would
# shadow the standard library's http for every library imported below.
if not __package__:
    raise SystemExit("run the benches as modules from the repository root: python -m bench.audit_latency")

import argparse
import asyncio
import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

_EXAMPLE = "profiles/examples/01-r1-neuro-urinary-retention.json"


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return cuts[49], cuts[98]


def _environment(folder: Path, fsync: str) -> dict[str, str]:
    return {
        "MSCC_MODE": "development",
        "MSCC_LOG_LEVEL": "WARNING",
        "MSCC_STORE__URL": f"sqlite+aiosqlite:///{folder / 'store.sqlite3'}",
        "MSCC_STORE__SPOOL_DIR": str(folder / "spool"),
        "MSCC_STORE__AUDIT_FSYNC": fsync,
        "MSCC_STORE__PSEUDONYM_KEY": "b" * 64,
    }


def _call(example: dict[str, object]) -> dict[str, object]:
    return {**example, "hookInstance": str(uuid.uuid4())}


async def _in_process(example: dict[str, object], folder: Path, fsync: str, calls: int, warmup: int) -> list[float]:
    os.environ.update(_environment(folder, fsync))
    from service.app import create_app

    app = create_app()
    path = "/cds-services/mscc-patient-view" if _per_hook_ids(app) else "/cds-services/mscc-screening"
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://b") as client:
        return await _timed(client, path, example, calls, warmup)


async def _timed(
    client: httpx.AsyncClient, path: str, example: dict[str, object], calls: int, warmup: int
) -> list[float]:
    """Milliseconds per call, one call at a time, the warm-up calls left out."""
    timings = []
    for number in range(warmup + calls):
        started = time.perf_counter()
        response = await client.post(path, json=_call(example))
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise SystemExit(f"hook call answered {response.status_code}: {response.text[:300]}")
        if number >= warmup:
            timings.append(elapsed * 1000)
    return timings


def _per_hook_ids(app: object) -> bool:
    registry = getattr(getattr(app, "state", None), "registry", None)
    return any(service.id == "mscc-patient-view" for service in registry or ())


async def _over_http(example: dict[str, object], folder: Path, fsync: str, calls: int, warmup: int) -> list[float]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, **_environment(folder, fsync)}
    log = (folder / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port)],
        cwd=_checkout(),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for _ in range(600):
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
            services = (await client.get("/cds-services")).json()["services"]
            return await _timed(client, f"/cds-services/{services[0]['id']}", example, calls, warmup)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _checkout() -> Path:
    """The root of the checkout whose ``service`` this process imports (found, not yet imported)."""
    spec = importlib.util.find_spec("service")
    if spec is None or spec.origin is None:
        raise SystemExit("no `service` package on the path: run from a checkout's root")
    return Path(spec.origin).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fsync", choices=("always", "never"), default="always")
    parser.add_argument("--label", help="row label (default: fsync=<policy>)")
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=40)
    args = parser.parse_args()
    example = json.loads((_checkout() / _EXAMPLE).read_text(encoding="utf-8"))
    label = args.label or f"fsync={args.fsync}"
    with tempfile.TemporaryDirectory(prefix="mscc-audit-bench-") as scratch:
        folder = Path(scratch)
        (folder / "inprocess").mkdir()
        (folder / "http").mkdir()
        local = asyncio.run(_in_process(example, folder / "inprocess", args.fsync, args.calls, args.warmup))
        remote = asyncio.run(_over_http(example, folder / "http", args.fsync, args.calls, args.warmup))
    local_p50, local_p99 = _percentiles(local)
    remote_p50, remote_p99 = _percentiles(remote)
    cells = [label, f"{local_p50:.2f} ms", f"{local_p99:.2f} ms", f"{remote_p50:.2f} ms", f"{remote_p99:.2f} ms"]
    print(f"| {' | '.join(cells)} | {args.calls} |")


if __name__ == "__main__":
    main()
