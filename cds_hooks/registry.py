"""What the router needs from a CDS Service, and a registry of them by id.

Every discovery entry has an id of its own: a service's URL is ``{baseUrl}/cds-services/{id}``,
and clients key the services they discover by id (the CDS Hooks Sandbox keeps only the last
entry of several sharing one), so a service that answers several hooks registers one
:class:`CDSService` per hook.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from cds_hooks.errors import ServiceNotFound, UnsupportedHook
from cds_hooks.models import CDSRequest, CDSResponse, FeedbackRequest, ServiceDefinition

__all__ = ["CDSService", "ClientIdentity", "Invocation", "ServiceRegistry"]


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """The verified CDS Client behind a call (from its JWT); never holds the token itself."""

    issuer: str
    jti: str
    tenant: str | None = None
    expires_at: datetime | None = None


@dataclass(slots=True)
class Invocation:
    """One call of a service: what arrived and who sent it."""

    service_id: str
    request: CDSRequest
    client: ClientIdentity | None
    received_at: datetime
    #: filled by the service for the caller's observability (audit, logs, metrics)
    annotations: dict[str, object] = field(default_factory=dict)


@runtime_checkable
class CDSService(Protocol):
    """A CDS Service: its discovery entry, its hook handler and its feedback handler."""

    @property
    def id(self) -> str: ...

    @property
    def definition(self) -> ServiceDefinition:
        """Its discovery entry, with this service's ``id`` and the one hook it answers."""
        ...

    async def handle(self, invocation: Invocation) -> CDSResponse: ...

    async def feedback(
        self, service_id: str, feedback: FeedbackRequest, client: ClientIdentity | None
    ) -> Mapping[str, Any]:
        """Record feedback; the JSON-able receipt is the response body."""
        ...


class ServiceRegistry:
    """The CDS Services an application offers, looked up by id."""

    def __init__(self, services: Iterable[CDSService] = ()) -> None:
        self._services: dict[str, CDSService] = {}
        for service in services:
            self.register(service)

    def register(self, service: CDSService) -> None:
        if service.id in self._services:
            raise ValueError(f"duplicate CDS Service id {service.id!r}")
        if service.definition.id != service.id:
            raise ValueError(f"the discovery entry of {service.id!r} must carry that id")
        self._services[service.id] = service

    def __iter__(self) -> Iterator[CDSService]:
        return iter(self._services.values())

    def __len__(self) -> int:
        return len(self._services)

    def get(self, service_id: str) -> CDSService:
        try:
            return self._services[service_id]
        except KeyError:
            raise ServiceNotFound() from None

    def for_hook(self, service_id: str, hook: str) -> tuple[CDSService, ServiceDefinition]:
        """The service and its discovery entry, if it answers ``hook``; 404 or 400 otherwise."""
        service = self.get(service_id)
        if service.definition.hook == hook:
            return service, service.definition
        raise UnsupportedHook(f"CDS Service {service_id!r} does not support the hook {hook!r}.")

    def definitions(self) -> list[ServiceDefinition]:
        return [service.definition for service in self]
