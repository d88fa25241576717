"""FHIR ``searchset`` Bundles as plain JSON, as a CDS client prefetches them or a FHIR server answers a search."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["draft_service_request", "searchset"]


def searchset(*resources: Mapping[str, Any], next_url: str | None = None) -> dict[str, Any]:
    """A Bundle of ``resources``; with ``next_url``, a ``next`` link to the following page."""
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }
    if next_url is not None:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


def draft_service_request(order_id: str, patient_id: str, **fields: Any) -> dict[str, Any]:
    """A draft ServiceRequest for ``patient_id``, as an order hook's ``draftOrders`` holds; ``fields`` add to it."""
    return {
        "resourceType": "ServiceRequest",
        "id": order_id,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{patient_id}"},
        **fields,
    }
