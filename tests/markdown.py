"""Markdown headings and their anchors as GitHub renders them, for the documentation tests."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

__all__ = ["REPO", "anchors", "slug", "table_rows"]

REPO = Path(__file__).resolve().parent.parent

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
# GitHub keeps letters, digits, spaces, hyphens and underscores; the rest is dropped.
_DROPPED = re.compile(r"[^\w\- ]", re.UNICODE)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading's text (before de-duplication)."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)  # inline code keeps its text
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link keeps its label
    return _DROPPED.sub("", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file; repeated headings get ``-1``, ``-2`` … as on GitHub."""
    seen: Counter[str] = Counter()
    found: set[str] = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match is None:
            continue
        base = slug(match.group(2))
        found.add(base if not seen[base] else f"{base}-{seen[base]}")
        seen[base] += 1
    return found


def table_rows(path: Path, heading_anchor: str) -> list[list[str]]:
    """The body rows (cells stripped) of every table under the heading with ``heading_anchor``."""
    rows: list[list[str]] = []
    inside = header = False
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _HEADING.match(line)
        if match is not None:
            if inside:
                break
            inside = slug(match.group(2)) == heading_anchor
            header = True
            continue
        if not inside:
            continue
        if not line.startswith("|"):
            header = True  # the next table starts with its header
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if header:
            header = False
        elif not all(set(cell) <= set("-: ") for cell in cells):
            rows.append(cells)
    return rows
