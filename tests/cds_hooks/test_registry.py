"""The service registry: lookup by id, hook dispatch, and its consistency checks."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from cds_hooks.errors import ServiceNotFound, UnsupportedHook
from cds_hooks.models import CDSRequest, ServiceDefinition
from cds_hooks.registry import CDSService, ClientIdentity, Invocation, ServiceRegistry


def test_services_are_found_by_id_and_hook(fake_service: Any) -> None:
    echo = fake_service("echo", "encounter-start")
    other = fake_service("other", "order-sign")
    registry = ServiceRegistry([echo, other])
    assert registry.get("echo") is echo
    service, definition = registry.for_hook("echo", "encounter-start")
    assert service is echo
    assert (definition.id, definition.hook) == ("echo", "encounter-start")
    assert len(registry) == 2
    assert list(registry) == [echo, other]


def test_definitions_list_each_service_once_with_its_own_id(fake_service: Any) -> None:
    registry = ServiceRegistry(
        [fake_service("a", "patient-view"), fake_service("b", "order-sign"), fake_service("c", "order-select")]
    )
    assert [(d.id, d.hook) for d in registry.definitions()] == [
        ("a", "patient-view"),
        ("b", "order-sign"),
        ("c", "order-select"),
    ]


def test_an_empty_registry_has_no_definitions() -> None:
    assert ServiceRegistry().definitions() == []


def test_an_unknown_id_is_service_not_found(fake_service: Any) -> None:
    with pytest.raises(ServiceNotFound) as caught:
        ServiceRegistry([fake_service()]).get("nope")
    assert caught.value.status_code == 404


def test_a_hook_the_service_does_not_answer_is_unsupported(fake_service: Any) -> None:
    registry = ServiceRegistry([fake_service("echo", "patient-view")])
    with pytest.raises(UnsupportedHook, match="CDS Service 'echo' does not support the hook 'order-sign'") as caught:
        registry.for_hook("echo", "order-sign")
    assert caught.value.status_code == 400
    with pytest.raises(ServiceNotFound):
        registry.for_hook("nope", "patient-view")


def test_duplicate_ids_are_refused_even_for_other_hooks(fake_service: Any) -> None:
    # a client keys discovered services by id: two entries with one id would collapse into one
    registry = ServiceRegistry([fake_service("echo")])
    with pytest.raises(ValueError, match="duplicate CDS Service id 'echo'"):
        registry.register(fake_service("echo", "order-sign"))


def test_the_definition_must_carry_the_service_id(fake_service: Any) -> None:
    class Mislabelled(fake_service):  # type: ignore[misc]
        @property
        def definition(self) -> ServiceDefinition:
            return ServiceDefinition(hook="patient-view", id="someone-else", description="d")

    with pytest.raises(ValueError, match="the discovery entry of 'echo' must carry that id"):
        ServiceRegistry([Mislabelled("echo")])


def test_the_fake_satisfies_the_protocol(fake_service: Any) -> None:
    assert isinstance(fake_service(), CDSService)
    assert not isinstance(object(), CDSService)


def test_client_identity_is_immutable_and_holds_no_token() -> None:
    identity = ClientIdentity(issuer="https://ehr.example.org", jti="j-1", tenant="t-1")
    assert [field.name for field in dataclasses.fields(identity)] == ["issuer", "jti", "tenant", "expires_at"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        identity.jti = "j-2"  # type: ignore[misc]


def test_invocations_do_not_share_annotations() -> None:
    request = CDSRequest.model_validate(
        {
            "hook": "patient-view",
            "hookInstance": "3c9d2f7a-1b4e-4f60-8a2d-5e7c9b1f0a42",
            "context": {"userId": "Practitioner/1", "patientId": "p"},
        }
    )
    at = datetime(2026, 6, 1, 9, tzinfo=UTC)
    first = Invocation(service_id="echo", request=request, client=None, received_at=at)
    second = Invocation(service_id="echo", request=request, client=None, received_at=at)
    first.annotations["cards"] = 1
    assert second.annotations == {}
