"""Benchmark over loopback HTTP: the service against a floor app, interleaved, in one run.

From the repository root::

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python -m bench.http             # prints Markdown tables (a few minutes)
    .venv/bin/python -m bench.http --quick     # smoke test: small records, a few calls

Two servers are started on free loopback ports, each as its own process group:

- the service, ``python -m service serve`` as the README runs it (development mode, its
  embedded SQLite store and audit spool in a temporary folder, default log level);
- the floor: uvicorn with the same settings (and as many worker processes as the service
  runs) serving a bare Starlette app that reads the body, parses it with ``orjson`` and
  answers ``{"cards": []}``, its start-up heap frozen as ``serve`` freezes its own. No
  Python service can answer the same bytes faster.

Both receive identical ``patient-view`` bodies of about 100, 1,000 and 10,000 resources
built from the in-process bench's synthea record (:mod:`synthetic`; ``--quick`` uses
scenario 01 of ``profiles/examples`` topped up with copies of its Observations). The
resources go to the prefetch key their type answers (Observations under ``labs``), and
the hook time is pinned with the development-mode extension, so the rules fire as in
``bench/run.py``. For each size and concurrency (1 and 8 keep-alive connections) the
calls alternate between floor and service in rounds, so a disturbance on the machine
hits both; the table gives p50, p99 and requests/s of each and their ratios, and the
CPU time the server's processes used per call (user + system, from /proc: less moved
by other load on the machine than the latencies are; 10 ms ticks, so only meaningful
over many calls).

While one connection keeps posting 10,000-resource hooks (``--large``), ``/livez`` and a
100-resource hook are called on a fresh connection each time, as a kubelet probe and a
new EHR connection do. Memory is the resident set of the server's whole process tree
(idle after start-up, and peak: each process's high-water mark; RSS counts the pages
forked workers share once per process, so the idle proportional set size is given too); start-up is the time
from spawning the process to the first answer of ``GET /cds-services``, median of
``--starts`` launches. The client runs in this process (plain asyncio streams, no HTTP
library), on the same machine: on 2 cores it competes with the servers for CPU, equally
for both.
"""

from __future__ import annotations

# As a script (`python bench/http.py`) bench/ would be first on the path, and bench/http.py would
# shadow the standard library's http for every library imported below.
if not __package__:
    raise SystemExit("run the benches as modules from the repository root: python -m bench.http")

import argparse
import asyncio
import contextlib
import gc
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from bench import synthetic

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

SERVICE_PATH = "/cds-services/mscc-patient-view"
EVALUATION_TIME = "org.mscc-cds.evaluation-time"
EXAMPLE = ROOT / "profiles" / "examples" / "01-r1-neuro-urinary-retention.json"
#: The prefetch key whose query returns each resource type (service/prefetch.py).
KEY_OF_TYPE = {
    "Condition": "conditions",
    "Observation": "labs",
    "ServiceRequest": "imagingOrders",
    "ImagingStudy": "imagingStudies",
    "DiagnosticReport": "imagingReports",
    "Procedure": "imagingProcedures",
}
Resource = dict[str, Any]


# -- the floor app ----------------------------------------------------------------------------


def floor_app() -> Any:
    """Starlette: read the body, parse it, answer an empty card list; nothing else."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def hook(request: Request) -> Response:
        orjson.loads(await request.body())
        return Response(b'{"cards":[]}', media_type="application/json")

    async def discovery(request: Request) -> Response:
        return Response(b'{"services":[]}', media_type="application/json")

    async def livez(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return Starlette(
        routes=[
            Route(SERVICE_PATH, hook, methods=["POST"]),
            Route("/cds-services", discovery),
            Route("/livez", livez),
        ]
    )


def serve_floor(port: int, workers: int) -> None:
    """The floor with ``serve``'s uvicorn settings, one process or a forked group of ``workers``."""
    import uvicorn

    app = floor_app()
    gc.collect()
    gc.freeze()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        access_log=False,
        log_config=None,
        proxy_headers=True,
        timeout_graceful_shutdown=20,
    )
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    if workers == 1:
        uvicorn.Server(config).run(sockets=[sock])
        return
    # Forked after start-up and supervised by the very code ``serve`` uses.
    from service.cli.workers import WorkerGroup

    raise SystemExit(WorkerGroup(workers, lambda: uvicorn.Server(config).run(sockets=[sock])).run())


# -- request bodies ---------------------------------------------------------------------------


def synthea_source() -> tuple[list[Resource], datetime]:
    files = synthetic.generate(BENCH / "out" / "synthea", patients=4)
    source, _ = synthetic.patients(files)
    return source, synthetic.last_activity(source)


def example_source() -> tuple[list[Resource], datetime]:
    example = orjson.loads(EXAMPLE.read_bytes())
    resources = []
    for value in example["prefetch"].values():
        if value.get("resourceType") == "Bundle":
            resources += [entry["resource"] for entry in value.get("entry", [])]
        else:
            resources.append(value)
    return resources, datetime.fromisoformat(example["extension"][EVALUATION_TIME])


def hook_body(source: list[Resource], size: int, at: datetime) -> bytes:
    """A patient-view call with ``size`` resources of ``source``, each under the key of its type."""
    record = [r for r in synthetic.record_of_size(source, size, at) if r["resourceType"] in {"Patient", *KEY_OF_TYPE}]
    supply = synthetic.observation_copies(source)
    while len(record) < size:
        record.append(next(supply))
    patient = next(r for r in record if r["resourceType"] == "Patient")
    prefetch: dict[str, Any] = {"patient": patient}
    prefetch.update({key: {"resourceType": "Bundle", "type": "searchset", "entry": []} for key in KEY_OF_TYPE.values()})
    for resource in record:
        if resource is not patient:
            prefetch[KEY_OF_TYPE[resource["resourceType"]]]["entry"].append({"resource": resource})
    call = {
        "hook": "patient-view",
        "hookInstance": str(uuid.UUID(int=size)),
        "context": {"userId": "Practitioner/bench", "patientId": patient["id"]},
        "prefetch": prefetch,
        "extension": {EVALUATION_TIME: at.isoformat()},
    }
    return orjson.dumps(call)


# -- the client -------------------------------------------------------------------------------


def post(path: str, body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    return head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


class Connection:
    """One keep-alive HTTP/1.1 connection: send a request, read status and body."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def call(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


async def call_once(port: int, request: bytes) -> tuple[int, bytes, float]:
    """A call on a fresh connection (as a probe makes it); status, body and seconds."""
    started = time.perf_counter()
    connection = await Connection.open(port)
    try:
        status, body = await connection.call(request)
    finally:
        await connection.close()
    return status, body, time.perf_counter() - started


async def load(port: int, request: bytes, calls: int, concurrency: int) -> tuple[list[float], float]:
    """``calls`` requests over ``concurrency`` connections; latencies and the wall time."""
    latencies: list[float] = []
    remaining = calls

    async def worker() -> None:
        nonlocal remaining
        connection = await Connection.open(port)
        try:
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                status, body = await connection.call(request)
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    raise SystemExit(f"port {port} answered {status}: {body[:300]!r}")
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started


# -- the servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    startup_s: float = 0.0
    log: Path | None = None
    samples: dict[str, list[float]] = field(default_factory=dict)

    def start(self, log: Path) -> float:
        """Spawn the server; seconds until ``GET /cds-services`` answers 200."""
        self.port = free_port()
        self.log = log
        started = time.perf_counter()
        with log.open("ab") as sink:
            self.process = subprocess.Popen(
                [*self.command, "--port", str(self.port)],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        request = get("/cds-services")
        deadline = started + 120
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited with {self.process.returncode}: see {log}")
            try:
                status, _, _ = asyncio.run(call_once(self.port, request))
                if status == 200:
                    return time.perf_counter() - started
            except OSError:
                pass
            time.sleep(0.005)
        raise SystemExit(f"{self.name} did not answer within 120 s: see {log}")

    def stop(self) -> None:
        """SIGTERM to the server we started (its supervisor stops its own workers)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def tree(self) -> list[int]:
        """The server's process and its descendants (its workers)."""
        assert self.process is not None
        pids, queue = [], [self.process.pid]
        while queue:
            pid = queue.pop()
            pids.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                with contextlib.suppress(OSError):
                    queue += [int(child) for child in task.read_text().split()]
        return pids

    def workers(self) -> int:
        """Processes that serve HTTP: the children when there are any, else the process itself."""
        return max(1, len(self.tree()) - 1)

    def cpu_s(self) -> float:
        """CPU time (user + system) the server's processes have used so far."""
        ticks = 0
        for pid in self.tree():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def pss_mib(self) -> float:
        """Proportional set size of the process tree: pages the workers share are counted once."""
        total = 0
        for pid in self.tree():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        return total / 1024

    def memory_mib(self, field_name: str) -> float:
        """Sum of ``field_name`` (VmRSS, VmHWM) over the process tree, in MiB."""
        total = 0
        for pid in self.tree():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith(field_name + ":"):
                        total += int(line.split()[1])
        return total / 1024


def service_server(folder: Path, workers: int | None) -> Server:
    env = {
        **os.environ,
        "MSCC_MODE": "development",
        "MSCC_STORE__URL": f"sqlite+aiosqlite:///{folder / 'store.sqlite3'}",
        "MSCC_STORE__SPOOL_DIR": str(folder / "spool"),
        "MSCC_STORE__PSEUDONYM_KEY": "b" * 64,
    }
    if workers is not None:
        env["MSCC_WORKERS"] = str(workers)
    return Server("service", [sys.executable, "-m", "service", "serve"], env)


def floor_server(workers: int) -> Server:
    command = [sys.executable, "-m", "bench.http", "--serve-floor", "--floor-workers", str(workers)]
    return Server("floor", command, dict(os.environ))


# -- measuring --------------------------------------------------------------------------------


def percentile(samples: list[float], cut: int) -> float:
    if len(samples) < 2:
        return samples[0] if samples else float("nan")
    return statistics.quantiles(sorted(samples), n=100, method="inclusive")[cut - 1]


@dataclass
class Cell:
    size: int
    concurrency: int
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"service": [], "floor": []})
    wall: dict[str, float] = field(default_factory=lambda: {"service": 0.0, "floor": 0.0})
    cpu: dict[str, float] = field(default_factory=lambda: {"service": 0.0, "floor": 0.0})

    def cpu_per_call(self, name: str) -> float:
        return self.cpu[name] / len(self.latencies[name])

    def rate(self, name: str) -> float:
        return len(self.latencies[name]) / self.wall[name]


def calls_for(size: int, quick: bool) -> int:
    if quick:
        return 16
    return {100: 800, 1_000: 200}.get(size, 24)


async def measure_cell(servers: dict[str, Server], body: bytes, cell: Cell, calls: int, rounds: int) -> None:
    request = post(SERVICE_PATH, body)
    for server in servers.values():  # warm-up: imports, caches, connection set-up
        await load(server.port, request, max(cell.concurrency, 4), cell.concurrency)
    for _ in range(rounds):
        for name in ("floor", "service"):
            used = servers[name].cpu_s()
            latencies, wall = await load(servers[name].port, request, calls // rounds, cell.concurrency)
            cell.cpu[name] += servers[name].cpu_s() - used
            cell.latencies[name] += latencies
            cell.wall[name] += wall


async def under_large_load(port: int, large: bytes, small: bytes, probes: int) -> dict[str, list[float]]:
    """``/livez`` and small-hook latencies on fresh connections while large hooks keep running."""
    running = True
    seen: dict[str, list[float]] = {"livez": [], "small": [], "large": []}

    async def keep_busy() -> None:
        connection = await Connection.open(port)
        try:
            while running:
                started = time.perf_counter()
                status, _ = await connection.call(post(SERVICE_PATH, large))
                seen["large"].append(time.perf_counter() - started)
                if status != 200:
                    raise SystemExit(f"the large hook answered {status}")
        finally:
            await connection.close()

    busy = asyncio.create_task(keep_busy())
    await asyncio.sleep(0.2)  # the first large call is being read and screened
    livez, hook = get("/livez"), post(SERVICE_PATH, small)
    for number in range(probes):
        status, _, elapsed = await call_once(port, livez if number % 2 == 0 else hook)
        if status != 200:
            raise SystemExit(f"a probe answered {status}")
        seen["livez" if number % 2 == 0 else "small"].append(elapsed)
        await asyncio.sleep(0.01)
    running = False
    await busy
    return seen


async def idle_small(port: int, small: bytes, calls: int) -> list[float]:
    request = post(SERVICE_PATH, small)
    return [(await call_once(port, request))[2] for _ in range(calls)]


def milliseconds(value: float) -> str:
    return f"{value * 1e3:.2f} ms"


def run(args: argparse.Namespace) -> str:
    source, at = example_source() if args.quick else synthea_source()
    sizes = args.sizes or ([100, 1_000] if args.quick else [100, 1_000, 10_000])
    large_size = args.large or (1_000 if args.quick else 10_000)
    bodies = {size: hook_body(source, size, at) for size in {*sizes, large_size, 100}}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="mscc-http-bench-") as scratch:
        folder = Path(scratch)
        service = service_server(folder, args.workers)
        startups: dict[str, list[float]] = {"service": [], "floor": []}
        # Start-up: fresh launches, the last of which stays up for the measurements.
        for number in range(args.starts):
            startups["service"].append(service.start(folder / "service.log"))
            if number < args.starts - 1:
                service.stop()
        floor = floor_server(service.workers())
        try:
            for number in range(args.starts):
                startups["floor"].append(floor.start(folder / "floor.log"))
                if number < args.starts - 1:
                    floor.stop()
            servers = {"service": service, "floor": floor}
            time.sleep(0.5)
            idle = {name: server.memory_mib("VmRSS") for name, server in servers.items()}
            idle_pss = {name: server.pss_mib() for name, server in servers.items()}
            cells = []
            for size in sizes:
                for concurrency in args.concurrency:
                    cell = Cell(size, concurrency)
                    asyncio.run(measure_cell(servers, bodies[size], cell, calls_for(size, args.quick), args.rounds))
                    cells.append(cell)
            quiet = asyncio.run(idle_small(service.port, bodies[100], 20 if args.quick else 100))
            loaded = asyncio.run(under_large_load(service.port, bodies[large_size], bodies[100], args.probes))
            peak = {name: server.memory_mib("VmHWM") for name, server in servers.items()}
            workers = service.workers()
        finally:
            service.stop()
            floor.stop()
    load_after = os.getloadavg()
    return report(
        cells,
        startups,
        idle,
        idle_pss,
        peak,
        quiet,
        loaded,
        large_size,
        workers=workers,
        loads=(load_before, load_after),
        bytes_of={size: len(body) for size, body in bodies.items()},
        source="scenario 01 of profiles/examples" if args.quick else "the bench's synthea lung cancer patient",
    )


def report(
    cells: list[Cell],
    startups: dict[str, list[float]],
    idle: dict[str, float],
    idle_pss: dict[str, float],
    peak: dict[str, float],
    quiet: list[float],
    loaded: dict[str, list[float]],
    large_size: int,
    *,
    workers: int,
    loads: tuple[tuple[float, float, float], tuple[float, float, float]],
    bytes_of: dict[int, int],
    source: str,
) -> str:
    lines = [
        "| resources | bytes | concurrency | service p50 | floor p50 | p50 ratio | service p99 | floor p99 | "
        "p99 ratio | service req/s | floor req/s | throughput ratio | CPU per call: service, floor (ratio) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for cell in cells:
        service, floor = cell.latencies["service"], cell.latencies["floor"]
        p50s, p50f = percentile(service, 50), percentile(floor, 50)
        p99s, p99f = percentile(service, 99), percentile(floor, 99)
        lines.append(
            f"| {cell.size:,} | {bytes_of[cell.size]:,} | {cell.concurrency} | {milliseconds(p50s)} | "
            f"{milliseconds(p50f)} | {p50s / p50f:.2f}× | {milliseconds(p99s)} | {milliseconds(p99f)} | "
            f"{p99s / p99f:.2f}× | {cell.rate('service'):.0f} | {cell.rate('floor'):.0f} | "
            f"{cell.rate('service') / cell.rate('floor'):.2f}× | {milliseconds(cell.cpu_per_call('service'))}, "
            f"{milliseconds(cell.cpu_per_call('floor'))} "
            f"({cell.cpu_per_call('service') / max(cell.cpu_per_call('floor'), 1e-9):.2f}×) |"
        )
    start_service, start_floor = (statistics.median(startups[name]) for name in ("service", "floor"))
    quiet_p50 = percentile(quiet, 50)
    loaded_small = percentile(loaded["small"], 50)
    lines += [
        "",
        f"| while {large_size:,}-resource hooks run (fresh connection per call) | p50 | p99 | max | calls |",
        "|---|---:|---:|---:|---:|",
        _row("`/livez`", loaded["livez"]),
        _row("100-resource hook", loaded["small"]),
        _row("100-resource hook, idle service", quiet),
        _row(f"{large_size:,}-resource hook (the load)", loaded["large"]),
        "",
        f"100-resource hook under load / idle (p50): {loaded_small / quiet_p50:.2f}×",
        "",
        "| | service | floor | ratio |",
        "|---|---:|---:|---:|",
        f"| idle RSS (process tree) | {idle['service']:.0f} MiB | {idle['floor']:.0f} MiB | "
        f"{idle['service'] / idle['floor']:.2f}× |",
        f"| idle PSS (shared pages counted once) | {idle_pss['service']:.0f} MiB | {idle_pss['floor']:.0f} MiB | "
        f"{idle_pss['service'] / idle_pss['floor']:.2f}× |",
        f"| peak RSS (sum of high-water marks) | {peak['service']:.0f} MiB | {peak['floor']:.0f} MiB | "
        f"{peak['service'] / peak['floor']:.2f}× |",
        f"| start-up to first discovery answer (median of {len(startups['service'])}) | "
        f"{milliseconds(start_service)} | {milliseconds(start_floor)} | {start_service / start_floor:.2f}× |",
        "",
        f"Bodies from {source}; {workers} worker process(es) for service and floor; "
        f"{os.cpu_count()} CPUs; load average {_loads(loads[0])} before, {_loads(loads[1])} after; "
        f"Python {sys.version.split()[0]}.",
    ]
    return "\n".join(lines)


def _row(label: str, samples: list[float]) -> str:
    return (
        f"| {label} | {milliseconds(percentile(samples, 50))} | {milliseconds(percentile(samples, 99))} | "
        f"{milliseconds(max(samples))} | {len(samples)} |"
    )


def _loads(values: tuple[float, float, float]) -> str:
    return "/".join(f"{value:.2f}" for value in values)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke test: scenario 01, 100 and 1,000 resources")
    parser.add_argument("--sizes", type=int, nargs="+", help="resources per call (default 100 1000 10000)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--large", type=int, help="resources of the hook that runs while probes are made")
    parser.add_argument("--workers", type=int, help="MSCC_WORKERS for the service (default: its own default)")
    parser.add_argument("--rounds", type=int, default=4, help="alternations of floor and service per cell")
    parser.add_argument("--probes", type=int, default=200, help="/livez and small-hook calls under load")
    parser.add_argument("--starts", type=int, default=3, help="launches to time start-up over")
    parser.add_argument("--serve-floor", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--floor-workers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.probes = min(args.probes, 20)
        args.starts = 1
        args.rounds = 2
    return args


def main() -> int:
    args = _arguments()
    if args.serve_floor:
        serve_floor(args.port, args.floor_workers)
        return 0
    print(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
