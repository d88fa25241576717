"""Patient pseudonyms for the audit trail: HMAC-SHA256 of the FHIR id under a secret key.

Keyed, not a bare hash: patient ids are short and guessable, so anyone could hash every
candidate and match a plain SHA-256. With the key kept apart from the database, the
audit trail links one patient's decisions together without naming the patient; the
hospital, holding the key, can still compute the pseudonym of a given patient when a
safety review needs it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

from pydantic import SecretStr

__all__ = ["Pseudonymiser"]

logger = logging.getLogger(__name__)


class Pseudonymiser:
    """Turns a patient id into a stable, non-reversible 64-character hex pseudonym."""

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("the pseudonym key must not be empty")
        self._key = key

    @classmethod
    def from_setting(cls, key: SecretStr | None) -> Pseudonymiser:
        """The configured key; without one (development), a random key for this process only."""
        if key is not None:
            return cls(key.get_secret_value().encode("utf-8"))
        logger.warning(
            "store.pseudonym_key is not set: audit pseudonyms use a random key for this process only "
            "and will not match across restarts (set MSCC_STORE__PSEUDONYM_KEY)",
            extra={"event": "pseudonym_key_generated"},
        )
        return cls(secrets.token_bytes(32))

    def __repr__(self) -> str:
        return "Pseudonymiser(key=**********)"

    def pseudonym(self, patient_id: str) -> str:
        return hmac.new(self._key, patient_id.encode("utf-8"), hashlib.sha256).hexdigest()
