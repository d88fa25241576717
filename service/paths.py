"""Where the service finds its FHIR artifacts when no folder is configured."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_PROFILES_DIR"]

#: The repository's ``profiles`` folder (value sets, plan definitions, examples, manifest).
DEFAULT_PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"
