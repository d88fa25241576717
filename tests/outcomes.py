"""What every error answer of a CDS Service must be: a JSON OperationOutcome, with no trace of the code behind it."""

from __future__ import annotations

import httpx

__all__ = ["assert_operation_outcome"]


def assert_operation_outcome(response: httpx.Response, status: int, code: str | None = None) -> list[str]:
    """Check an error answer and return its issues' diagnostics; ``code``, when given, is every issue's code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"] and all(issue["severity"] == "error" for issue in body["issue"])
    if code is not None:
        assert {issue["code"] for issue in body["issue"]} == {code}
    assert "Traceback" not in response.text and 'File "' not in response.text
    return [issue["diagnostics"] for issue in body["issue"]]
