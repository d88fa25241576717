"""A report page as Debian's headless chromium draws it, and where each plot colour shows on it.

Tests anywhere in the tree use it (``from tests.screenshots import ...``) to check that the
self-contained HTML reports render with their plots: a screenshot, then the rows of pixels
where a palette colour appears, in bands (one band per plot that uses the colour).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["Screenshot", "bands", "screenshot"]


class Screenshot:
    """The screenshot's pixels, read with Pillow."""

    def __init__(self, png: Path) -> None:
        from PIL import Image

        self.image = Image.open(png).convert("RGB")
        self.size = self.image.size

    def rows_with(self, colour: str) -> list[int]:
        """The rows (y) where ``colour`` (``#RRGGBB``) shows, looking at every other column."""
        rgb = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
        pixels = self.image.load()
        assert pixels is not None
        width, height = self.size
        return [y for y in range(height) if any(pixels[x, y] == rgb for x in range(0, width, 2))]


def screenshot(page: Path, work: Path, *, width: int, height: int) -> Screenshot:
    """``page`` drawn by headless chromium in a ``width`` x ``height`` window (skipped outside CI without it)."""
    chromium = shutil.which("chromium")
    if chromium is None and not os.environ.get("CI"):
        pytest.skip("Debian chromium is not installed (.ci/test installs it)")
    assert chromium is not None, "CI must have Debian chromium (.ci/test installs it)"
    png = work / "page.png"
    subprocess.run(
        [
            chromium,
            *("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"),
            f"--user-data-dir={work / 'chromium-profile'}",
            f"--window-size={width},{height}",
            f"--screenshot={png}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    shot = Screenshot(png)
    assert shot.size == (width, height)
    return shot


def bands(rows: list[int], gap: int) -> list[tuple[int, int]]:
    """Runs of row numbers, split where two consecutive rows are more than ``gap`` apart."""
    runs: list[tuple[int, int]] = []
    for row in rows:
        if runs and row - runs[-1][1] <= gap:
            runs[-1] = (runs[-1][0], row)
        else:
            runs.append((row, row))
    return runs
