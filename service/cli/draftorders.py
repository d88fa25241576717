"""The draft orders ``mscc-cds call`` sends with an order hook (``context.draftOrders``).

``order-select`` and ``order-sign`` carry the orders being written as a FHIR Bundle in
their context, and ``order-select`` also names the ones just chosen (``selections``,
``ResourceType/id`` of draft orders). Neither can be prefetched (CDS Hooks Library: they
are not primitive context fields), so the client must send them: from a file here,
checked before anything goes on the wire, so that a typo is a message, not a 400.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from service.errors import MsccError

__all__ = ["ORDER_HOOKS", "DraftOrderError", "draft_order_context"]

#: The hooks whose context carries draft orders.
ORDER_HOOKS = frozenset({"order-select", "order-sign"})


class DraftOrderError(MsccError, ValueError):
    """The draft orders cannot be sent; the message is for the person at the terminal."""


def _load_bundle(path: Path) -> dict[str, Any]:
    try:
        document = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise DraftOrderError(f"cannot read the draft orders {path} ({exc.strerror})") from None
    except orjson.JSONDecodeError:
        raise DraftOrderError(f"{path} is not JSON") from None
    if not isinstance(document, dict) or document.get("resourceType") != "Bundle":
        raise DraftOrderError(f"{path} is not a FHIR Bundle (draftOrders is a Bundle of the orders being written)")
    try:
        Bundle.model_validate(document)
    except (ValidationError, KeyError, ValueError, TypeError) as exc:
        # KeyError: fhir.resources' answer to an unknown resourceType inside the Bundle.
        problem = exc.errors(include_url=False, include_input=False)[0] if isinstance(exc, ValidationError) else None
        where = ".".join(str(part) for part in problem["loc"]) + f": {problem['msg']}" if problem else str(exc)
        raise DraftOrderError(f"{path} is not a valid FHIR R4 Bundle ({where})") from None
    return document


def _order_references(bundle: dict[str, Any], path: Path, patient_id: str) -> list[str]:
    references = []
    for position, entry in enumerate(bundle.get("entry") or ()):
        resource = entry.get("resource")
        if not isinstance(resource, dict) or not resource.get("id"):
            raise DraftOrderError(f"{path}: entry {position} needs a resource with an id (selections name it)")
        reference = f"{resource['resourceType']}/{resource['id']}"
        subject = (resource.get("subject") or {}).get("reference")
        if subject is not None and subject != f"Patient/{patient_id}":
            # Orders for someone else would be screened against this patient's record.
            raise DraftOrderError(f"{path}: {reference} is for {subject}, not Patient/{patient_id}")
        references.append(reference)
    if not references:
        raise DraftOrderError(f"{path}: the Bundle holds no draft order")
    return references


def draft_order_context(
    hook: str, path: Path | None, selections: Sequence[str] | None, patient_id: str
) -> dict[str, Any]:
    """The context fields an order hook adds (``draftOrders``, ``selections``); none for other hooks."""
    if hook not in ORDER_HOOKS:
        if path is not None or selections:
            raise DraftOrderError(f"--draft-orders and --selection are for {' and '.join(sorted(ORDER_HOOKS))} only")
        return {}
    if path is None:
        raise DraftOrderError(f"--hook {hook} needs --draft-orders (a FHIR Bundle of the orders being written)")
    bundle = _load_bundle(path)
    references = _order_references(bundle, path, patient_id)
    if hook == "order-sign":
        if selections:
            raise DraftOrderError("--selection is for order-select only (order-sign reviews every draft order)")
        return {"draftOrders": bundle}
    chosen = list(selections) if selections else references
    unknown = [reference for reference in chosen if reference not in references]
    if unknown:
        raise DraftOrderError(f"--selection {', '.join(unknown)}: not among the draft orders ({', '.join(references)})")
    return {"draftOrders": bundle, "selections": chosen}
