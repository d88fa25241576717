"""Fixtures shared by the whole test tree; anything narrower lives in a subfolder's conftest."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Run ``@pytest.mark.anyio`` tests on asyncio only: the service runs under uvicorn's asyncio loop."""
    return "asyncio"
