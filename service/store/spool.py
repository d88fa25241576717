"""The audit spool: append-only files on local disk that hold each audit record before its hook is answered.

One process appends to one *segment* file of its own, ``audit-<pid>-<random>.spool``:
one ``write`` per record, a line ``<crc32> <json>\\n``, so that a record is either whole
in the file or (a torn tail after a power cut) recognisably not. The process holds an
exclusive ``flock`` on each segment it owns; the kernel releases it when the process
dies, however it dies, which is how another process (or the same service restarted)
knows a segment is orphaned and adopts it. A new segment is created under a temporary
name and locked before it is renamed into view, so nobody can adopt it in between.

Durability (``fsync``): with ``always`` a record's hook waits until ``fdatasync`` has
returned; calls that arrive while one sync runs share the next one (group commit).
With ``never`` the record is in the kernel's page cache when the hook answers: a
process crash (SIGKILL, OOM kill) loses nothing, a power cut or kernel crash may lose
what the kernel had not yet written back.

Progress (what reached the database) is a byte offset per segment, kept in
``<segment>.done``. It may lag behind the database after a crash; the database key
(segment id + sequence number) makes the second insert a no-op. A segment that is
sealed (full) and wholly written is deleted. Records the database refuses go to
``dead-letter-<segment>.jsonl`` with the reason, and are never retried by the service.

The spool must live on a local file system: ``flock`` is not reliable on NFS.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from service.errors import MsccError

__all__ = ["SEGMENT_BYTES", "FsyncPolicy", "Segment", "Spool", "SpoolEntry", "SpoolUnavailable"]

logger = logging.getLogger(__name__)

FsyncPolicy = Literal["always", "never"]

_PREFIX = "audit-"
_SUFFIX = ".spool"
_DONE = ".done"
#: A segment is sealed and a new one started past this size; a drained, sealed segment is deleted.
SEGMENT_BYTES = 8 * 1024 * 1024
#: Bytes read per look at a segment: a few hundred records.
_READ_CHUNK = 512 * 1024
#: After a failed write, the spool counts as writable again once this much space is free.
_MIN_FREE_BYTES = 16 * 1024 * 1024


class SpoolUnavailable(MsccError, RuntimeError):
    """The spool cannot take a record (disk full, folder gone, read-only file system)."""


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    """One record read back from a segment, with where it ends in the file."""

    segment: str
    seq: int
    spooled_at: float
    payload: dict[str, Any]
    end: int


@dataclass(slots=True)
class Segment:
    """A segment file this process holds the lock on: its own (active or sealed) or adopted."""

    spool_id: str
    path: Path
    fd: int
    size: int
    done: int
    #: records past ``done``
    pending: int
    next_seq: int = 1
    sealed: bool = False
    #: wall-clock time of the oldest record not yet in the database (an upper bound: see Spool.advance)
    oldest_pending_at: float | None = None
    adopted: bool = False
    #: end offsets of damaged lines already dead-lettered (they are read again if a write fails after)
    damaged: set[int] = field(default_factory=set)

    @property
    def done_path(self) -> Path:
        return self.path.with_suffix(_DONE)


def _encode(entry: dict[str, Any]) -> bytes:
    body = orjson.dumps(entry)
    return b"%08x %s\n" % (zlib.crc32(body), body)


def _decode(line: bytes) -> dict[str, Any] | None:
    """The entry of one line, or ``None`` when the line is not whole (bad checksum, not JSON)."""
    checksum, _, body = line.partition(b" ")
    try:
        if int(checksum, 16) != zlib.crc32(body):
            return None
        entry = orjson.loads(body)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


class Spool:
    """The spool folder as seen by one process; see the module docstring."""

    def __init__(self, folder: Path, *, fsync: FsyncPolicy, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.folder = folder
        self._fsync = fsync
        self._segment_bytes = segment_bytes
        self._segments: dict[str, Segment] = {}
        self._active: Segment | None = None
        self._dead_letter_fd: int | None = None
        self._dead_letter_path: Path | None = None
        #: set whenever a record is appended, so the writer wakes up
        self.appended = asyncio.Event()
        #: set whenever records are written or dead-lettered, so flush() can re-check
        self.progressed = asyncio.Event()
        self._synced: dict[str, int] = {}
        self._syncing: asyncio.Future[None] | None = None
        self._syncing_id: str | None = None
        self.broken: str | None = None
        self.spooled = 0
        self.written = 0
        self.dead_lettered = 0

    # -- life --------------------------------------------------------------------------------

    def open(self) -> None:
        """Create the folder and this process's first segment, and adopt any orphans."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._active = self._new_segment()
        except OSError as exc:
            raise SpoolUnavailable(f"the audit spool folder {self.folder} is not writable") from exc
        self.adopt_orphans()

    def close(self) -> None:
        """Release every lock; what is pending stays on disk for the next process to adopt."""
        for segment in self._segments.values():
            with contextlib.suppress(OSError):
                os.close(segment.fd)
        self._segments.clear()
        self._active = None
        if self._dead_letter_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._dead_letter_fd)
            self._dead_letter_fd = None

    def _new_segment(self) -> Segment:
        spool_id = f"{os.getpid()}-{uuid.uuid4().hex[:16]}"
        path = self.folder / f"{_PREFIX}{spool_id}{_SUFFIX}"
        hidden = self.folder / f".new-{spool_id}"
        fd = os.open(hidden, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(hidden, path)
            if self._fsync == "always":
                self._sync_folder()
        except OSError:
            os.close(fd)
            raise
        segment = Segment(spool_id=spool_id, path=path, fd=fd, size=0, done=0, pending=0)
        self._segments[spool_id] = segment
        return segment

    def _sync_folder(self) -> None:
        # A new file's name is only durable once its folder is synced.
        folder_fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder_fd)
        finally:
            os.close(folder_fd)

    # -- appending (the hook's path) -----------------------------------------------------------

    async def append(self, payload: dict[str, Any]) -> tuple[str, int]:
        """Write one record; returns its key (segment id, sequence number) once it is as durable as configured."""
        segment = self._writable_segment()
        seq = segment.next_seq
        line = _encode({"seq": seq, "at": time.time(), **payload})
        try:
            written = os.write(segment.fd, line)
            if written != len(line):
                raise OSError("short write to the audit spool")
        except OSError as exc:
            # Put the file back as it was, so a half line never sits before the next whole one.
            with contextlib.suppress(OSError):
                os.ftruncate(segment.fd, segment.size)
            self.broken = "audit spool not writable"
            logger.error("audit spool write failed", exc_info=exc, extra={"event": "audit_spool_write_failed"})
            raise SpoolUnavailable("the audit spool is not writable") from exc
        self.broken = None
        segment.size += len(line)
        segment.next_seq += 1
        segment.pending += 1
        if segment.oldest_pending_at is None:
            segment.oldest_pending_at = time.time()
        self.spooled += 1
        self.appended.set()
        if self._fsync == "always":
            await self._durable(segment)
        return segment.spool_id, seq

    def _writable_segment(self) -> Segment:
        active = self._active
        if active is None:
            raise SpoolUnavailable("the audit spool is not open")
        if active.size < self._segment_bytes:
            return active
        try:
            fresh = self._new_segment()
        except OSError as exc:
            self.broken = "audit spool not writable"
            raise SpoolUnavailable("the audit spool cannot start a new segment") from exc
        active.sealed = True
        self._active = fresh
        self._forget_if_finished(active)
        return fresh

    async def _durable(self, segment: Segment) -> None:
        """Return once ``fdatasync`` has covered everything written to ``segment`` so far."""
        target = segment.size
        while self._synced.get(segment.spool_id, 0) < target:
            if segment.spool_id not in self._segments:
                return  # wholly written to the database meanwhile, and deleted: durable there
            if self._syncing is None:
                self._syncing_id = segment.spool_id
                self._syncing = asyncio.ensure_future(self._sync(segment))
            # Shielded: a cancelled hook must not cancel the sync other calls wait for.
            await asyncio.shield(self._syncing)

    async def _sync(self, segment: Segment) -> None:
        covered = segment.size
        try:
            await asyncio.to_thread(os.fdatasync, segment.fd)
            self._synced[segment.spool_id] = max(self._synced.get(segment.spool_id, 0), covered)
        except OSError as exc:
            self.broken = "audit spool not writable"
            raise SpoolUnavailable("the audit spool could not be synced") from exc
        finally:
            self._syncing = None
            self._syncing_id = None
            self._forget_if_finished(segment)  # it may have been drained while the sync ran

    # -- draining (the writer's side) -----------------------------------------------------------

    @property
    def backlog(self) -> int:
        """Records spooled (by this process or adopted) and not yet in the database nor dead-lettered."""
        return sum(segment.pending for segment in self._segments.values())

    def oldest_age_s(self, now: float | None = None) -> float:
        times = [s.oldest_pending_at for s in self._segments.values() if s.pending and s.oldest_pending_at]
        return max(0.0, (now or time.time()) - min(times)) if times else 0.0

    def with_backlog(self) -> list[Segment]:
        """Segments with records to write, adopted and sealed ones first (they are the oldest)."""
        waiting = [segment for segment in self._segments.values() if segment.size > segment.done]
        return sorted(waiting, key=lambda segment: (segment is self._active, segment.spool_id))

    def read(self, segment: Segment, limit: int) -> tuple[list[SpoolEntry], int]:
        """Up to ``limit`` whole entries after ``segment.done``; and the offset the read stopped at.

        A line that is not whole in a segment nobody appends to any more (a torn tail, or
        damage) is dead-lettered as raw text and stepped over.
        """
        entries: list[SpoolEntry] = []
        offset = segment.done
        remaining = segment.size - offset
        size = min(_READ_CHUNK, remaining)
        data = os.pread(segment.fd, size, offset)
        while b"\n" not in data and size < remaining:  # a line longer than one chunk
            size = min(size * 4, remaining)
            data = os.pread(segment.fd, size, offset)
        start = 0
        while len(entries) < limit:
            newline = data.find(b"\n", start)
            if newline < 0:
                break
            line = data[start:newline]
            end = offset + newline + 1
            start = newline + 1
            decoded = _decode(line)
            if decoded is None:
                if end not in segment.damaged:  # read again after an outage: kept once
                    self.dead_letter(segment, None, "damaged spool line (checksum or JSON)", raw=line)
                    segment.damaged.add(end)
                # A placeholder (sequence 0) so that the returned offset steps over it.
                entries.append(SpoolEntry(segment.spool_id, 0, 0.0, {}, end))
                continue
            seq = decoded.pop("seq")
            spooled_at = decoded.pop("at")
            entries.append(SpoolEntry(segment.spool_id, int(seq), float(spooled_at), decoded, end))
        if not entries and data and b"\n" not in data and segment is not self._active:
            # What remains has no line end: a torn tail (a crash while appending), in a
            # segment nobody appends to any more. Kept as a dead letter, then cut off.
            self.dead_letter(segment, None, "torn spool line (crash while appending)", raw=data)
            segment.size = offset
            self._forget_if_finished(segment)
        return [entry for entry in entries if entry.seq], (entries[-1].end if entries else offset)

    def advance(self, segment: Segment, offset: int, *, written: int) -> None:
        """Record that everything before ``offset`` is in the database (``written`` records) or dead-lettered."""
        counted = self._count_lines(segment, segment.done, offset)
        segment.done = offset
        segment.pending = max(0, segment.pending - counted)
        self.written += written
        if segment.pending == 0 or segment.done >= segment.size:
            segment.pending = 0
            segment.oldest_pending_at = None
        else:
            segment.oldest_pending_at = self._spooled_at(segment, offset) or segment.oldest_pending_at
        self._save_done(segment)
        self._forget_if_finished(segment)
        self.progressed.set()

    def _count_lines(self, segment: Segment, start: int, end: int) -> int:
        if end <= start:
            return 0
        return os.pread(segment.fd, end - start, start).count(b"\n")

    def _spooled_at(self, segment: Segment, offset: int) -> float | None:
        head = os.pread(segment.fd, min(4096, segment.size - offset), offset)
        newline = head.find(b"\n")
        decoded = _decode(head[:newline]) if newline >= 0 else None
        at = decoded.get("at") if decoded else None
        return float(at) if isinstance(at, int | float) else None

    def _save_done(self, segment: Segment) -> None:
        temporary = segment.done_path.with_suffix(".done-new")
        try:
            temporary.write_text(str(segment.done), encoding="ascii")
            os.replace(temporary, segment.done_path)
        except OSError as exc:
            # Harmless: the next process re-sends from an older offset and the database skips them.
            logger.warning("audit spool progress not saved", exc_info=exc, extra={"event": "audit_spool_done_failed"})

    def _forget_if_finished(self, segment: Segment) -> None:
        if segment is self._active or segment.done < segment.size:
            return
        if not segment.sealed and not segment.adopted:
            return
        if self._syncing_id == segment.spool_id:
            return  # a sync runs on its descriptor; _sync forgets it afterwards
        with contextlib.suppress(OSError):
            segment.path.unlink()
        with contextlib.suppress(OSError):
            segment.done_path.unlink()
        with contextlib.suppress(OSError):
            os.close(segment.fd)
        self._segments.pop(segment.spool_id, None)
        self._synced.pop(segment.spool_id, None)

    # -- dead letters ----------------------------------------------------------------------------

    def dead_letter(self, segment: Segment, entry: SpoolEntry | None, reason: str, *, raw: bytes = b"") -> None:
        """Keep a record the database refuses, with the reason, in this process's dead-letter file."""
        record: dict[str, Any] = {"deadLetteredAt": time.time(), "reason": reason, "segment": segment.spool_id}
        if entry is not None:
            record |= {"seq": entry.seq, "spooledAt": entry.spooled_at, "record": entry.payload}
        else:
            record["raw"] = raw.decode("utf-8", errors="backslashreplace")
        line = orjson.dumps(record) + b"\n"
        try:
            fd = self._dead_letter_file()
            os.write(fd, line)
            os.fsync(fd)
        except OSError as exc:
            logger.error("dead-letter write failed", exc_info=exc, extra={"event": "audit_dead_letter_failed"})
            raise SpoolUnavailable("the audit dead-letter file is not writable") from exc
        self.dead_lettered += 1
        logger.error(
            "audit record dead-lettered: %s",
            reason,
            extra={"event": "audit_dead_lettered", "total": self.dead_lettered},
        )

    def _dead_letter_file(self) -> int:
        if self._dead_letter_fd is None:
            name = f"dead-letter-{os.getpid()}-{uuid.uuid4().hex[:16]}.jsonl"
            self._dead_letter_path = self.folder / name
            self._dead_letter_fd = os.open(self._dead_letter_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return self._dead_letter_fd

    # -- orphans ---------------------------------------------------------------------------------

    def adopt_orphans(self) -> int:
        """Take over segments whose process is gone (their lock is free); returns how many."""
        adopted = 0
        for path in self._segment_files():
            spool_id = path.name[len(_PREFIX) : -len(_SUFFIX)]
            if spool_id in self._segments:
                continue
            segment = self._try_adopt(spool_id, path)
            if segment is not None:
                self._segments[spool_id] = segment
                adopted += 1
                logger.info(
                    "audit spool segment adopted with %d records to write",
                    segment.pending,
                    extra={"event": "audit_spool_adopted", "count": segment.pending},
                )
                self._forget_if_finished(segment)
        if adopted:
            self.appended.set()
        return adopted

    def _segment_files(self) -> Iterator[Path]:
        try:
            names = sorted(os.listdir(self.folder))
        except OSError:
            return
        for name in names:
            if name.startswith(_PREFIX) and name.endswith(_SUFFIX):
                yield self.folder / name

    def _try_adopt(self, spool_id: str, path: Path) -> Segment | None:
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND)
        except OSError:
            return None  # deleted in the meantime by its owner
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            status = os.fstat(fd)
        except OSError:
            os.close(fd)
            return None  # a live process holds it
        if status.st_nlink == 0:
            os.close(fd)
            return None  # its previous adopter finished it and deleted it while we waited
        segment = Segment(
            spool_id=spool_id, path=path, fd=fd, size=status.st_size, done=0, pending=0, sealed=True, adopted=True
        )
        try:
            segment.done = min(int(segment.done_path.read_text(encoding="ascii")), status.st_size)
        except (OSError, ValueError):
            segment.done = 0  # start over: the database skips what it already holds
        segment.pending = self._count_lines(segment, segment.done, segment.size)
        if segment.pending:
            segment.oldest_pending_at = self._spooled_at(segment, segment.done)
        return segment

    def writable(self) -> str | None:
        """``None`` when a record can be appended now; otherwise why not."""
        if self._active is None:
            return "audit spool not open"
        if self.broken is not None and not self._has_room():
            return self.broken
        if not os.access(self.folder, os.W_OK):
            return "audit spool folder not writable"
        return None

    def _has_room(self) -> bool:
        """After a failed write: whether the folder takes files and has room again (then it is not broken)."""
        try:
            status = os.statvfs(self.folder)
        except OSError:
            return False
        if status.f_bavail * status.f_frsize < _MIN_FREE_BYTES or not os.access(self.folder, os.W_OK):
            return False
        self.broken = None
        return True

    def segment(self, spool_id: str) -> Segment | None:
        return self._segments.get(spool_id)
