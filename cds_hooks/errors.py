"""The one exception tree of the CDS Hooks layer, and its mapping to HTTP.

Every error a CDS Service can answer with derives from :class:`CDSHooksError`, which
knows its HTTP status and renders itself as a FHIR OperationOutcome: the CDS Hooks 3.0
ballot asks for an OperationOutcome on every non-2xx response, and 2.0 allows it.
The tree::

    CDSHooksError                     (500, exception) something we did not expect
    ├── ClientError                   (4xx) the caller can fix it
    │   ├── MalformedRequest          (400, structure/required) bad JSON or schema
    │   ├── UnsupportedHook           (400, not-supported) hook not served by this id
    │   ├── Unauthorized              (401, login) JWT missing or invalid; no detail
    │   ├── ServiceNotFound           (404, not-found) unknown service id
    │   ├── PayloadTooLarge           (413, too-costly) body, depth or entry cap hit
    │   ├── UnsupportedMediaType      (415, not-supported) body is not JSON
    │   └── PreconditionFailed        (412, incomplete) required FHIR data unobtainable
    └── ServiceUnavailable            (503, transient) a dependency is down

The mapping lives only here (``status_code`` and ``issue_code`` class attributes);
the router turns any of them into a response with :func:`error_response_body`.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "CDSHooksError",
    "ClientError",
    "MalformedRequest",
    "PayloadTooLarge",
    "PreconditionFailed",
    "ServiceNotFound",
    "ServiceUnavailable",
    "Unauthorized",
    "UnsupportedHook",
    "UnsupportedMediaType",
    "operation_outcome",
]


def operation_outcome(*issues: tuple[str, str, str]) -> dict[str, Any]:
    """Build a FHIR R4 OperationOutcome from ``(severity, code, diagnostics)`` triples."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": severity, "code": code, "diagnostics": diagnostics} for severity, code, diagnostics in issues
        ],
    }


class CDSHooksError(Exception):
    """Base of every error the protocol layer turns into an HTTP response."""

    status_code: ClassVar[int] = 500
    issue_code: ClassVar[str] = "exception"
    # Shown when the caller gives no message: never an exception's repr or a trace.
    default_message: ClassVar[str] = "The CDS Service could not process the request."

    def __init__(self, message: str | None = None, *, details: list[str] | None = None) -> None:
        self.message = message or self.default_message
        self.details = details or []
        super().__init__(self.message)

    def to_operation_outcome(self) -> dict[str, Any]:
        """The response body: one issue for the message, one per detail line."""
        issues = [("error", self.issue_code, self.message)]
        issues.extend(("error", self.issue_code, detail) for detail in self.details)
        return operation_outcome(*issues)

    @property
    def headers(self) -> dict[str, str]:
        return {}


class ClientError(CDSHooksError):
    """The request cannot be served as sent; retrying it unchanged will fail again."""

    status_code = 400
    issue_code = "invalid"
    default_message = "The request is not valid."


class MalformedRequest(ClientError):
    """The body is not JSON, or it misses or mistypes a field the spec requires."""

    status_code = 400
    issue_code = "structure"
    default_message = "The request body is not a valid CDS Hooks request."


class UnsupportedHook(ClientError):
    """The service exists but does not answer the hook named in the request."""

    status_code = 400
    issue_code = "not-supported"
    default_message = "This CDS Service does not support the requested hook."


class Unauthorized(ClientError):
    """The client JWT is absent or fails verification.

    Best practice is a bare 401 "without any additional information": the reason
    goes to logs and metrics via :attr:`reason`, never into the response.
    """

    status_code = 401
    issue_code = "login"
    default_message = "Unauthorized."

    def __init__(self, reason: str = "unauthorized") -> None:
        super().__init__(self.default_message)
        self.reason = reason

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class ServiceNotFound(ClientError):
    """No CDS Service is registered under the requested id."""

    status_code = 404
    issue_code = "not-found"
    default_message = "No CDS Service with this id."


class PayloadTooLarge(ClientError):
    """The body exceeds a configured size, nesting or entry-count cap."""

    status_code = 413
    issue_code = "too-costly"
    default_message = "The request body is too large."


class UnsupportedMediaType(ClientError):
    """The body is declared as something other than JSON."""

    status_code = 415
    issue_code = "not-supported"
    default_message = "The request body must be JSON (application/json)."


class PreconditionFailed(ClientError):
    """Data the service requires is neither prefetched nor obtainable from ``fhirServer``.

    CDS Hooks 2.0 "Prefetch": the service "SHALL respond with an HTTP 412 Precondition
    Failed status code".
    """

    status_code = 412
    issue_code = "incomplete"
    default_message = "Required FHIR data was neither prefetched nor obtainable from the FHIR server."


class ServiceUnavailable(CDSHooksError):
    """A dependency of the service (its store, for instance) is temporarily down.

    ``retry_after_s`` becomes a ``Retry-After`` header (RFC 9110 §10.2.3): the client
    should send the same request again after that many seconds.
    """

    status_code = 503
    issue_code = "transient"
    default_message = "The CDS Service is temporarily unavailable."

    def __init__(
        self, message: str | None = None, *, details: list[str] | None = None, retry_after_s: int | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after_s = retry_after_s

    @property
    def headers(self) -> dict[str, str]:
        return {} if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}
