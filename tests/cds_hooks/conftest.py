"""Fixtures of the protocol-layer tests: the specification's own JSON examples and a fake service."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from cds_hooks.models import Card, CDSResponse, FeedbackRequest, ServiceDefinition, Source
from cds_hooks.registry import ClientIdentity, Invocation

SPEC_EXAMPLES = Path(__file__).resolve().parent / "spec_examples"


def load_spec_example(name: str) -> Any:
    """The parsed JSON of ``spec_examples/<name>.json`` (see SOURCES.md there)."""
    return json.loads((SPEC_EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture
def spec_example() -> Callable[[str], Any]:
    return load_spec_example


class FakeService:
    """A tiny in-process CDS Service for protocol tests: one info card naming the hook.

    It records every invocation and feedback so tests can see what the router handed over.
    """

    def __init__(
        self,
        service_id: str = "echo",
        hook: str = "patient-view",
        *,
        failure: Exception | None = None,
        definition: ServiceDefinition | None = None,
    ) -> None:
        self._id = definition.id if definition is not None else service_id
        self._failure = failure
        self._definition = definition or ServiceDefinition(
            hook=hook, id=service_id, title="Echo", description=f"Echoes {hook}."
        )
        self.invocations: list[Invocation] = []
        self.feedback_calls: list[tuple[str, FeedbackRequest, ClientIdentity | None]] = []

    @property
    def id(self) -> str:
        return self._id

    @property
    def definition(self) -> ServiceDefinition:
        return self._definition

    async def handle(self, invocation: Invocation) -> CDSResponse:
        self.invocations.append(invocation)
        if self._failure is not None:
            raise self._failure
        card = Card(summary=f"Hook {invocation.request.hook}", indicator="info", source=Source(label="Echo"))
        return CDSResponse(cards=[card])

    async def feedback(
        self, service_id: str, feedback: FeedbackRequest, client: ClientIdentity | None
    ) -> Mapping[str, Any]:
        self.feedback_calls.append((service_id, feedback, client))
        return {"received": len(feedback.feedback)}


@pytest.fixture
def fake_service() -> type[FakeService]:
    """The :class:`FakeService` class, to build services with other ids, hooks or failures."""
    return FakeService
