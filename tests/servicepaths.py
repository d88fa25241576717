"""Where the tests find the screening services: one CDS Service, with its own id, per hook."""

from __future__ import annotations

from service.screening import service_id_for

__all__ = ["service_path"]


def service_path(hook: str = "patient-view") -> str:
    """The path of the service that answers ``hook``, e.g. ``/cds-services/mscc-patient-view``."""
    return f"/cds-services/{service_id_for(hook)}"
