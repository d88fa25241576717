"""Copies and versions of one resource: the shortcut for records without any agrees with the full pass."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from service.clinical.versions import older_versions, superseded

# Few types and ids, so that copies are common; ids and types that are not strings too
# (a JSON list cannot even be hashed), and entries that are not objects.
_IDS = st.one_of(st.sampled_from(["a", "b", "c"]), st.none(), st.integers(0, 2), st.lists(st.just("a"), max_size=1))
_META = st.fixed_dictionaries(
    {},
    optional={
        "versionId": st.sampled_from(["1", "2", "10", "x", "\u00b2", "\u0663"]),  # superscript two, Arabic-Indic three
        "lastUpdated": st.sampled_from(["2026-01-01T00:00:00Z", "2026-02-01", "garbage"]),
    },
)
_RESOURCES = st.one_of(
    st.builds(
        lambda kind, ident, meta: {"resourceType": kind, "id": ident, "meta": meta},
        st.sampled_from(["Observation", "Condition", None]),
        _IDS,
        _META,
    ),
    st.just("not an object"),
)


@settings(max_examples=400, deadline=None)
@given(resources=st.lists(_RESOURCES, max_size=8))
def test_the_shortcut_agrees_with_the_full_pass(resources: list[Any]) -> None:
    assert superseded(resources) == older_versions(resources)


def test_a_version_in_other_digits_is_no_number() -> None:
    # "²".isdigit() is true and int("²") raises: such a version id once gave a 500.
    first = {"resourceType": "Observation", "id": "o", "meta": {"versionId": "\u00b2"}}
    second = {"resourceType": "Observation", "id": "o", "meta": {"versionId": "1"}}
    assert superseded([first, second]) == {id(first)}  # no number to compare: the one met last is kept


def test_the_later_version_supersedes_the_earlier_whatever_the_order() -> None:
    first = {"resourceType": "Observation", "id": "o", "meta": {"versionId": "2"}}
    second = {"resourceType": "Observation", "id": "o", "meta": {"versionId": "1"}}
    assert superseded([first, second]) == {id(second)}
    assert superseded(iter([first, {"resourceType": "Observation", "id": ["o"]}])) == frozenset()
