"""The exception tree: each class knows its HTTP status and renders an OperationOutcome."""

from __future__ import annotations

import pytest

from cds_hooks.errors import (
    CDSHooksError,
    ClientError,
    MalformedRequest,
    PayloadTooLarge,
    PreconditionFailed,
    ServiceNotFound,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedHook,
    UnsupportedMediaType,
    operation_outcome,
)

EVERY_ERROR: list[tuple[type[CDSHooksError], int, str]] = [
    (CDSHooksError, 500, "exception"),
    (ClientError, 400, "invalid"),
    (MalformedRequest, 400, "structure"),
    (UnsupportedHook, 400, "not-supported"),
    (Unauthorized, 401, "login"),
    (ServiceNotFound, 404, "not-found"),
    (PayloadTooLarge, 413, "too-costly"),
    (UnsupportedMediaType, 415, "not-supported"),
    (PreconditionFailed, 412, "incomplete"),
    (ServiceUnavailable, 503, "transient"),
]


@pytest.mark.parametrize(("error_class", "status", "code"), EVERY_ERROR)
def test_every_error_renders_an_operation_outcome_with_its_status(
    error_class: type[CDSHooksError], status: int, code: str
) -> None:
    error = error_class()
    assert error.status_code == status
    outcome = error.to_operation_outcome()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"] == [{"severity": "error", "code": code, "diagnostics": error_class.default_message}]
    assert str(error) == error_class.default_message


@pytest.mark.parametrize("error_class", [cls for cls, _, _ in EVERY_ERROR if cls is not Unauthorized])
def test_message_and_details_become_one_issue_each(error_class: type[CDSHooksError]) -> None:
    error = error_class("Top-level message.", details=["prefetch key 'patient': absent", "context.userId: missing"])
    diagnostics = [issue["diagnostics"] for issue in error.to_operation_outcome()["issue"]]
    assert diagnostics == ["Top-level message.", "prefetch key 'patient': absent", "context.userId: missing"]


def test_client_errors_are_4xx_and_the_rest_are_not() -> None:
    for error_class, status, _ in EVERY_ERROR:
        assert issubclass(error_class, ClientError) == (400 <= status < 500), error_class.__name__
    assert not issubclass(ServiceUnavailable, ClientError)
    assert all(issubclass(error_class, CDSHooksError) for error_class, _, _ in EVERY_ERROR)


def test_unauthorized_keeps_its_reason_out_of_the_body() -> None:
    error = Unauthorized("jti replayed for issuer https://ehr.example.org")
    assert error.reason == "jti replayed for issuer https://ehr.example.org"
    body = error.to_operation_outcome()
    assert body == {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "login", "diagnostics": "Unauthorized."}],
    }
    assert "jti" not in str(body) and "jti" not in str(error)
    assert error.headers == {"WWW-Authenticate": "Bearer"}


def test_only_unauthorized_adds_headers() -> None:
    assert [cls for cls, _, _ in EVERY_ERROR if cls().headers] == [Unauthorized]


def test_operation_outcome_builds_one_issue_per_triple() -> None:
    assert operation_outcome(("error", "processing", "a"), ("warning", "informational", "b")) == {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "error", "code": "processing", "diagnostics": "a"},
            {"severity": "warning", "code": "informational", "diagnostics": "b"},
        ],
    }


def test_service_unavailable_tells_the_client_when_to_retry() -> None:
    assert ServiceUnavailable().headers == {}
    assert ServiceUnavailable("later", retry_after_s=30).headers == {"Retry-After": "30"}
