"""The spool file format and its life: torn and damaged lines, group commit, sealing, adoption by lock."""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.store.spool import Spool
from service.store.text import escape_controls, storable, unstorable_reason

pytestmark = pytest.mark.anyio

_CONTROL_OR_SURROGATE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def unescape(value: str) -> str:
    return re.sub(
        r"\\(\\|x[0-9a-f]{2}|u[0-9a-f]{4})",
        lambda match: "\\" if match.group(1) == "\\" else chr(int(match.group(1)[1:], 16)),
        value,
    )


@given(st.text(alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0xFFFF)))
def test_escaped_text_holds_no_control_character_and_reads_back(value: str) -> None:
    escaped = escape_controls(value)
    assert not _CONTROL_OR_SURROGATE.search(escaped)
    escaped.encode("utf-8")  # storable by every driver
    assert unescape(escaped) == value


@given(st.text(), st.integers(min_value=1, max_value=300))
def test_a_stored_field_is_capped_with_a_marker(value: str, cap: int) -> None:
    stored = storable(value, cap)
    assert stored is not None
    escaped = escape_controls(value)
    if len(escaped) <= cap:
        assert stored == escaped
    else:
        assert stored == f"{escaped[:cap]}…[+{len(escaped) - cap} chars]"


@given(st.text(max_size=50))
def test_feedback_text_is_refused_exactly_when_it_holds_a_control_character(value: str) -> None:
    reason = unstorable_reason(value, 256)
    assert (reason is None) == (not _CONTROL_OR_SURROGATE.search(value))


def payload(number: int) -> dict[str, object]:
    return {"event": {"hook_instance": f"call-{number}"}, "rules": [], "cards": []}


async def test_concurrent_appends_share_syncs_and_each_gets_its_own_sequence_number(tmp_path: Path) -> None:
    spool = Spool(tmp_path, fsync="always")
    spool.open()
    try:
        keys = await asyncio.gather(*(spool.append(payload(number)) for number in range(50)))
        (segment,) = spool.with_backlog()
        entries, end = spool.read(segment, 100)
    finally:
        spool.close()
    assert sorted(seq for _, seq in keys) == list(range(1, 51))
    assert [entry.payload["event"] for entry in entries] == [{"hook_instance": f"call-{n}"} for n in range(50)]
    assert end == segment.size


async def test_a_full_segment_is_sealed_and_deleted_once_written(tmp_path: Path) -> None:
    spool = Spool(tmp_path, fsync="never", segment_bytes=200)  # about two records per segment
    spool.open()
    try:
        for number in range(12):
            await spool.append(payload(number))
        files = sorted(tmp_path.glob("audit-*.spool"))
        assert len(files) > 2
        for segment in spool.with_backlog():
            entries, end = spool.read(segment, 1000)
            spool.advance(segment, end, written=len(entries))
        assert spool.backlog == 0 and spool.written == 12
        assert len(list(tmp_path.glob("audit-*.spool"))) == 1  # only the active one is left
    finally:
        spool.close()


async def test_a_torn_tail_and_a_damaged_line_in_an_orphan_are_dead_lettered_and_the_rest_read(
    tmp_path: Path,
) -> None:
    dead = Spool(tmp_path, fsync="never")
    dead.open()
    for number in range(3):
        await dead.append(payload(number))
    dead.close()
    (orphan,) = tmp_path.glob("audit-*.spool")
    lines = orphan.read_bytes().splitlines(keepends=True)
    damaged = lines[1].replace(b"call-1", b"call-X")  # the checksum no longer matches
    orphan.write_bytes(lines[0] + damaged + lines[2] + b'0badc0de {"seq": 4, "at"')  # a power cut mid-append

    spool = Spool(tmp_path, fsync="never")
    spool.open()  # adopts the orphan
    try:
        segment = spool.segment(orphan.name[len("audit-") : -len(".spool")])
        assert segment is not None and spool.backlog == 3
        entries, end = spool.read(segment, 100)
        spool.advance(segment, end, written=len(entries))
        assert [entry.payload["event"]["hook_instance"] for entry in entries] == ["call-0", "call-2"]
        spool.read(segment, 100)  # nothing whole is left: the torn tail goes
    finally:
        spool.close()
    letters = [
        orjson.loads(line) for path in tmp_path.glob("dead-letter-*.jsonl") for line in path.read_bytes().splitlines()
    ]
    assert [letter["reason"] for letter in letters] == [
        "damaged spool line (checksum or JSON)",
        "torn spool line (crash while appending)",
    ]
    assert not orphan.exists()


async def test_a_segment_locked_by_a_live_process_is_not_adopted(tmp_path: Path) -> None:
    owner = Spool(tmp_path, fsync="never")
    owner.open()
    await owner.append(payload(1))
    (owned,) = tmp_path.glob("audit-*.spool")
    other = Spool(tmp_path, fsync="never")
    other.open()
    try:
        assert other.backlog == 0 and other.adopt_orphans() == 0
        # The lock is what tells: held through another open file description, as by another process.
        fd = os.open(owned, os.O_RDONLY)
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(fd)
        owner.close()  # the owner dies
        assert other.adopt_orphans() == 1 and other.backlog == 1
    finally:
        other.close()
