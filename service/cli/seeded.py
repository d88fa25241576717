"""When ``seed`` last shifted the example patients into a FHIR server, so others can replay it.

``mscc-cds seed`` moves every scenario's referenceTime to the moment it runs. Screened an
hour or a week later, a sign "new in the last 14 days" may have aged out of its window and
the cards differ from the documented ones. So seed records that moment per FHIR server
(``$XDG_STATE_HOME/mscc-cds/seeded.json``, else ``~/.local/state/...``), and ``screen`` and
``call`` evaluate at it by default in development mode (``--at now`` opts out). Production
services ignore the time a client asks for: the rules always measure from the hook's arrival.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

__all__ = ["record_seeding", "seeded_time", "state_file"]


def state_file() -> Path:
    state_home = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state_home / "mscc-cds" / "seeded.json"


def _read() -> dict[str, str]:
    try:
        loaded = json.loads(state_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(key): str(value) for key, value in loaded.items()} if isinstance(loaded, dict) else {}


def record_seeding(fhir_server: str, at: datetime) -> None:
    """Remember that the scenarios in ``fhir_server`` were shifted to ``at`` (aware)."""
    seeded = _read()
    seeded[fhir_server] = at.isoformat()
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(seeded, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def seeded_time(fhir_server: str) -> datetime | None:
    """The time ``seed`` shifted ``fhir_server``'s scenarios to, if it did."""
    text = _read().get(fhir_server)
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
