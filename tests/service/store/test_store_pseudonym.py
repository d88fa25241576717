"""Patient pseudonyms: keyed, stable, and never the id itself."""

from __future__ import annotations

import hashlib
import hmac
import logging

import pytest
from pydantic import SecretStr

from service.store.pseudonym import Pseudonymiser

KEY = "8b1f0c6e2a9d4f7b3c5e1a0d9f8e7c6b"


def test_pseudonym_is_the_hmac_sha256_of_the_id() -> None:
    pseudonymiser = Pseudonymiser.from_setting(SecretStr(KEY))

    pseudonym = pseudonymiser.pseudonym("s01-patient")

    assert pseudonym == hmac.new(KEY.encode(), b"s01-patient", hashlib.sha256).hexdigest()
    assert len(pseudonym) == 64
    assert pseudonymiser.pseudonym("s01-patient") == pseudonym
    assert pseudonymiser.pseudonym("s02-patient") != pseudonym


def test_another_key_gives_another_pseudonym() -> None:
    first = Pseudonymiser(KEY.encode()).pseudonym("s01-patient")
    second = Pseudonymiser(KEY.upper().encode()).pseudonym("s01-patient")

    assert first != second
    assert first != hashlib.sha256(b"s01-patient").hexdigest()


def test_without_a_key_a_random_one_is_used_and_said(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="service.store.pseudonym")

    first, second = Pseudonymiser.from_setting(None), Pseudonymiser.from_setting(None)

    assert first.pseudonym("s01-patient") != second.pseudonym("s01-patient")
    assert sum("pseudonym_key is not set" in message for message in caplog.messages) == 2


def test_the_key_never_shows() -> None:
    assert KEY not in repr(Pseudonymiser(KEY.encode()))


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        Pseudonymiser(b"")
