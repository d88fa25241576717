"""Kleene three-valued logic of the rules (service.clinical.rules.base)."""

from __future__ import annotations

import itertools

import pytest

from service.clinical.rules.base import Truth, all_of, any_of, negate

VALUES: tuple[Truth, ...] = (True, False, None)


def _rank(value: Truth) -> int:
    # Kleene order: false < unknown < true; AND is the minimum, OR the maximum.
    return {False: 0, None: 1, True: 2}[value]


@pytest.mark.parametrize("size", [1, 2, 3])
def test_all_of_is_the_minimum_and_any_of_the_maximum_in_kleene_order(size: int) -> None:
    for values in itertools.product(VALUES, repeat=size):
        assert all_of(*values) is min(values, key=_rank), values
        assert any_of(*values) is max(values, key=_rank), values


def test_empty_conjunction_is_true_and_empty_disjunction_false() -> None:
    assert all_of() is True
    assert any_of() is False


def test_negate_keeps_unknown() -> None:
    assert [negate(value) for value in VALUES] == [False, True, None]
