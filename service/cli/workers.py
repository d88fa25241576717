"""Several worker processes on one listening socket: forked after start-up, then supervised.

One event loop does everything in its process: while it parses and screens a
10,000-resource record, nothing else in that process answers, ``/livez`` included. With
one worker per core, a call arriving on a new connection is accepted by a worker whose
loop is free (a busy loop does not ask the kernel for connections), and the cores share
the screening.

The application is built once, before the fork: the workers share its start-up heap
(models, value sets; frozen, so no collection writes to it) copy-on-write, and a worker
that dies is replaced by a fresh fork in milliseconds. Each worker runs the app's
lifespan itself: its own database pool, audit spool segment and writer.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

__all__ = ["WorkerGroup", "available_cores"]

logger = logging.getLogger("service.workers")

_PR_SET_PDEATHSIG = 1
#: A worker that dies this soon after it was forked failed to start: replacing it would
#: only repeat the failure (a taken database, an unwritable spool), so the group stops.
_START_FAILURE_S = 5.0


def available_cores(cgroup_cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup v2 CPU quota.

    A container's CPU limit is a quota, not an affinity: ``os.cpu_count()`` would count
    the node's cores and start more workers than the limit lets run.
    """
    cores = len(os.sched_getaffinity(0))
    with contextlib.suppress(OSError, ValueError):
        quota, period = cgroup_cpu_max.read_text(encoding="ascii").split()
        if quota != "max":
            cores = min(cores, math.ceil(int(quota) / int(period)))
    return max(1, cores)


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (a SIGKILLed supervisor leaves no orphans)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class WorkerGroup:
    """Forks ``count`` processes that each run ``serve()``; replaces one that dies; stops them on SIGTERM/SIGINT.

    ``on_started()`` runs in the supervisor once the first workers are forked;
    ``on_exit(pid)`` for every worker that has ended (the metrics of a dead process are
    marked so).
    """

    count: int
    serve: Callable[[], None]
    on_exit: Callable[[int], None] | None = None
    on_started: Callable[[], None] | None = None
    _workers: dict[int, float] = field(default_factory=dict)
    _stopping: bool = False

    def run(self) -> int:
        """Run until stopped; 0 after a clean stop, 1 when workers could not start."""
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        failed = False
        try:
            for _ in range(self.count):
                self._fork()
            if self.on_started is not None:
                self.on_started()
            while self._workers:
                pid, status = os.wait()
                started = self._workers.pop(pid, None)
                if started is None:
                    continue
                if self.on_exit is not None:
                    self.on_exit(pid)
                if self._stopping:
                    continue
                code = os.waitstatus_to_exitcode(status)
                if time.monotonic() - started < _START_FAILURE_S:
                    logger.error("worker %d failed to start (exit %d): stopping", pid, code, extra={"event": "worker"})
                    failed = True
                    self._stop(signal.SIGTERM, None)
                    continue
                logger.error("worker %d ended (exit %d): starting another", pid, code, extra={"event": "worker"})
                self._fork()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 1 if failed else 0

    def _fork(self) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, signal.SIG_DFL)
                _die_with_parent()
                self.serve()
                code = 0
            except BaseException:
                logger.error("worker failed", exc_info=True, extra={"event": "worker_failed"})
            finally:
                # Never return into the supervisor's code (its loop, its finally blocks).
                os._exit(code)
        self._workers[pid] = time.monotonic()

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True
        for pid in list(self._workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
