"""Decisive results: of calcium, albumin, pain scores and body weights, only what can change an answer is validated.

The engine builds its snapshot with ``decisive_only``; every rule must then answer
exactly as with every result read, with the same evidence, except that of the severe
pain scores only the latest is shown. Results that are never validated add no notes: the
tests use an invalid result's note as the witness that it was (or was not) validated.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.clinical.cards import render_card
from service.clinical.decisive import raw_kg, raw_number, raw_when
from service.clinical.engine import decide
from service.clinical.policy import ClinicalPolicy
from service.clinical.rules import Evidence, Given, Plan, derive_facts
from service.clinical.snapshot import SnapshotResult, build_snapshot
from service.clinical.valuesets import ValueSetLibrary
from service.fhir.record import PatientRecord
from tests.service.clinical.factories import (
    ALBUMIN,
    AT,
    BACKACHE,
    BODY_WEIGHT,
    CALCIUM_CORRECTED,
    CALCIUM_MASS,
    CALCIUM_MOLAR,
    FATIGUE,
    LOINC,
    NSCLC,
    PAIN_SCORE,
    UCUM,
    Resource,
    ago,
    condition,
    custom_library,
    day_ago,
    library,
    observation,
    record,
)

INVALID: dict[str, Any] = {"valueString": "also a string value"}  # two types of value[x]: not valid R4B
INVALID_NOTE = "Observation skipped: not valid FHIR R4B (resource: value_error)"


def snap(
    *resources: Resource,
    decisive: bool = True,
    policy: ClinicalPolicy | None = None,
    valuesets: ValueSetLibrary | None = None,
) -> SnapshotResult:
    return build_snapshot(
        record(*resources), AT, valuesets or library(), policy or ClinicalPolicy(), decisive_only=decisive
    )


def read_ids(result: SnapshotResult) -> list[str | None]:
    return [item.source.id for item in result.snapshot.measurements]


def rid(resource: Resource) -> str:
    return str(resource["id"])


_SCORE = "severe pain score"
#: Card detail lines that list severe pain scores, or count those not listed.
_SCORE_LINE = re.compile(r"^- (?:Severe pain score|[^\n]*more not listed)[^\n]*\n?", re.MULTILINE)


def _scores(evidence: tuple[Evidence, ...]) -> set[str | None]:
    return {entry.item.source.id for entry in evidence if entry.role == _SCORE}


def _without_scores(evidence: tuple[Evidence, ...]) -> tuple[Evidence, ...]:
    return tuple(entry for entry in evidence if entry.role != _SCORE)


def same_answer(patient_record: PatientRecord, policy: ClinicalPolicy, valuesets: ValueSetLibrary) -> None:
    """Facts, rule outcomes and cards agree between a decisive and a complete snapshot.

    Only the severe pain scores shown may differ (in the evidence, the card detail and
    the suggested order's reasons): the decisive snapshot shows some of those the complete
    one shows, and some whenever it shows any.
    """
    runs = []
    for decisive in (True, False):
        snapshot = build_snapshot(patient_record, AT, valuesets, policy, decisive_only=decisive).snapshot
        facts = derive_facts(snapshot, policy)
        decision = decide(Given(snapshot, policy, facts))
        cards = [render_card(plan, snapshot, valuesets, lambda: "uuid").to_json() for plan in decision.plans]
        runs.append((facts, decision, cards))
    shown, every = (_scores(facts.pain_feature.evidence) for facts, _, _ in runs)
    assert shown <= every and bool(shown) == bool(every)
    score_refs = {f"Observation/{score}" for score in every}
    rendered = []
    for facts, decision, cards in runs:
        pain = facts.pain_feature
        facts = replace(facts, pain_feature=replace(pain, evidence=_without_scores(pain.evidence)))
        plans: list[Plan] = [replace(plan, evidence=_without_scores(plan.evidence)) for plan in decision.plans]
        for card in cards:
            card["detail"] = _SCORE_LINE.sub("", card["detail"])
            for suggestion in card.get("suggestions", ()):
                for action in suggestion["actions"]:
                    reasons = action["resource"].get("reasonReference", [])
                    action["resource"]["reasonReference"] = [r for r in reasons if r["reference"] not in score_refs]
        rendered.append((facts, plans, decision.outcomes, cards))
    assert rendered[0] == rendered[1]


# -- pain scores ------------------------------------------------------------------------


def test_a_low_pain_score_is_never_validated_and_never_changes_an_answer() -> None:
    low = observation(PAIN_SCORE, value=3, unit="{score}", effective=ago(1), **INVALID)
    severe = observation(PAIN_SCORE, value=8, unit="{score}", effective=ago(2))
    complete = snap(low, severe, decisive=False)
    assert complete.notes == (INVALID_NOTE,)
    decisive = snap(low, severe)
    assert decisive.notes == ()
    assert read_ids(decisive) == [rid(severe)]
    same_answer(record(condition(NSCLC), condition(BACKACHE, onset=ago(5)), low, severe), ClinicalPolicy(), library())


@pytest.mark.parametrize(
    "value",
    [
        {"valueQuantity": {"value": 7, "unit": "{score}"}},  # the threshold itself counts
        {"valueQuantity": {"unit": "{score}"}, "valueInteger": 3},  # which value? validation decides
        {"valueQuantity": {"value": "2"}},  # a string is coerced by validation, not trusted raw
        {"valueInteger": True},  # a bool is not a number
        {"valueQuantity": [2]},
        {},
    ],
)
def test_a_pain_score_not_surely_below_the_threshold_is_read(value: dict[str, Any]) -> None:
    score = observation(PAIN_SCORE, effective=ago(1), **value)
    assert snap(score).notes == snap(score, decisive=False).notes
    assert read_ids(snap(score)) == read_ids(snap(score, decisive=False))


def test_only_the_latest_severe_pain_score_in_the_window_is_validated() -> None:
    older = observation(PAIN_SCORE, value=9, unit="{score}", effective=ago(20))
    latest = observation(PAIN_SCORE, value=8, unit="{score}", effective=ago(2))
    outside = observation(PAIN_SCORE, value=10, unit="{score}", effective=ago(91), **INVALID)
    result = snap(older, latest, outside)
    assert read_ids(result) == [rid(latest)]
    assert result.notes == ()


def test_an_invalid_latest_severe_pain_score_falls_back_to_the_previous_one() -> None:
    older = observation(PAIN_SCORE, value=9, unit="{score}", effective=ago(20))
    broken = observation(PAIN_SCORE, value=8, unit="{score}", effective=ago(2), **INVALID)
    result = snap(older, broken)
    assert read_ids(result) == [rid(older)]
    assert result.notes == (INVALID_NOTE,)


def test_the_threshold_is_the_policy() -> None:
    score = observation(PAIN_SCORE, value=5, unit="{score}", effective=ago(1))
    assert read_ids(snap(score)) == []
    assert read_ids(snap(score, policy=ClinicalPolicy(severe_pain_score=5))) == [rid(score)]


# -- calcium ----------------------------------------------------------------------------


def calcium(days: float, value: float = 10.0, code: str = CALCIUM_MASS, **extra: Any) -> Resource:
    unit = "mmol/L" if code != CALCIUM_MASS else "mg/dL"
    return observation(code, value=value, unit=unit, effective=ago(days), **extra)


def test_only_the_latest_calcium_is_validated() -> None:
    older = calcium(3, **INVALID)
    latest = calcium(1)
    assert snap(older, latest, decisive=False).notes != ()
    result = snap(older, latest)
    assert read_ids(result) == [rid(latest)] and result.notes == ()


def test_an_invalid_newest_calcium_falls_back_to_the_previous_valid_one() -> None:
    oldest, previous, newest = calcium(3, value=9), calcium(2, value=13), calcium(1, value=15, **INVALID)
    result = snap(oldest, previous, newest)
    assert read_ids(result) == [rid(previous)]
    assert result.notes == (INVALID_NOTE,)
    same_answer(record(oldest, previous, newest), ClinicalPolicy(), library())


def test_a_calcium_without_a_usable_unit_or_value_is_passed_over_like_an_invalid_one() -> None:
    previous = calcium(2, value=13)
    odd_unit = observation(CALCIUM_MASS, value=15, unit="kg", effective=ago(1))
    no_value = observation(CALCIUM_MASS, effective=ago(1, hours=-1), valueQuantity={"unit": "mg/dL"})
    result = snap(previous, odd_unit, no_value)
    assert read_ids(result) == [rid(previous)]
    assert result.notes == (
        "Observation skipped: result without a numeric value",
        "Observation skipped: calcium unit not recognised",
    )


def test_a_calcium_outside_its_window_is_not_read() -> None:
    window = ClinicalPolicy().calcium_result_window_days
    old = calcium(window + 1)
    assert read_ids(snap(old, decisive=False)) == [rid(old)]
    assert read_ids(snap(old)) == []
    same_answer(record(old), ClinicalPolicy(), library())


def test_at_the_same_time_a_reported_corrected_calcium_wins_and_needs_no_albumin() -> None:
    total = calcium(1, code=CALCIUM_MOLAR, value=2.9)
    corrected = calcium(1, code=CALCIUM_CORRECTED, value=3.1)
    albumin = observation(ALBUMIN, value=30, unit="g/L", effective=ago(1))
    assert read_ids(snap(total, corrected, albumin)) == [rid(corrected)]
    same_answer(record(total, corrected, albumin), ClinicalPolicy(), library())


def test_at_the_same_time_the_first_in_record_order_wins_and_the_next_if_it_is_invalid() -> None:
    first, second = calcium(1, value=11), calcium(1, value=13)
    assert read_ids(snap(first, second)) == [rid(first)]
    broken = calcium(1, value=11, **INVALID)
    assert read_ids(snap(broken, second)) == [rid(second)]
    same_answer(record(broken, second), ClinicalPolicy(), library())


# -- albumin ----------------------------------------------------------------------------


def albumin(days: float, hours: float = 0, **extra: Any) -> Resource:
    return observation(ALBUMIN, value=30, unit="g/L", effective=ago(days, hours), **extra)


def test_the_nearest_valid_albumin_is_the_only_one_read() -> None:
    total = calcium(1, code=CALCIUM_MOLAR, value=2.9)
    nearest = albumin(1, hours=1, **INVALID)
    next_nearest = albumin(1, hours=5)
    farther = albumin(1, hours=10)
    outside = albumin(4)
    result = snap(farther, nearest, total, outside, next_nearest)
    assert read_ids(result) == [rid(total), rid(next_nearest)]
    assert result.notes == (INVALID_NOTE,)
    same_answer(record(farther, nearest, total, outside, next_nearest), ClinicalPolicy(), library())


def test_between_albumins_as_near_the_first_in_record_order_wins_and_the_next_if_it_is_invalid() -> None:
    total = calcium(1, code=CALCIUM_MOLAR, value=2.9)
    before, after = albumin(1, hours=2), albumin(1, hours=-2)
    assert read_ids(snap(total, after, before)) == [rid(total), rid(after)]
    broken = albumin(1, hours=-2, **INVALID)
    assert read_ids(snap(total, broken, before)) == [rid(total), rid(before)]
    same_answer(record(total, broken, before), ClinicalPolicy(), library())


def test_without_a_calcium_no_albumin_is_read() -> None:
    assert read_ids(snap(albumin(1), albumin(2))) == []


# -- results read whatever their time ---------------------------------------------------


@pytest.mark.parametrize(
    "when",
    [
        {"effectivePeriod": {"start": ago(30), "end": ago(1)}},
        {"effectiveDateTime": "2026-05-30T08:00:00"},  # no offset: read as UTC with a note
        {"effectiveTiming": {"event": [ago(2)]}},
        {"effectiveDateTime": ago(2), "effectiveInstant": "2026-05-30T08:00:00Z"},
        {},
    ],
)
def test_a_result_without_a_strict_time_is_always_read(when: dict[str, Any]) -> None:
    odd = observation(CALCIUM_MASS, value=11, unit="mg/dL", **when)
    latest = calcium(0.5)
    assert snap(odd, latest).notes == snap(odd, latest, decisive=False).notes
    assert read_ids(snap(odd, latest)) == read_ids(snap(odd, latest, decisive=False))


def test_a_code_in_two_groups_is_always_read() -> None:
    both = custom_library(extra={"pain-severity": [(LOINC, CALCIUM_MASS)]})
    old_and_low = observation(CALCIUM_MASS, value=1, unit="mg/dL", effective=ago(30))
    assert read_ids(snap(old_and_low, valuesets=both)) == [rid(old_and_low)]


# -- the raw readings the order comes from ----------------------------------------------

offsets = st.sampled_from(["Z", "+00:00", "-00:00", "+01:00", "-03:30", "+05:45", "+14:00", "-12:00"])


@st.composite
def strict_times(draw: st.DrawFn) -> str:
    """FHIR date and dateTime values in the strict forms :func:`raw_when` ranks by."""
    # Within the measurement horizon (90 days), so that the complete snapshot reads them.
    moment = AT - timedelta(days=draw(st.integers(-3, 85)), seconds=draw(st.integers(0, 86_399)))
    form = draw(st.sampled_from(["year", "month", "day", "seconds", "fraction"]))
    if form == "year":
        return f"{moment:%Y}"
    if form == "month":
        return f"{moment:%Y-%m}"
    if form == "day":
        return f"{moment:%Y-%m-%d}"
    stamp = f"{moment:%Y-%m-%dT%H:%M:%S}"
    if form == "fraction":
        stamp += "." + draw(st.text("0123456789", min_size=1, max_size=6))
    return stamp + draw(offsets)


@settings(max_examples=300, deadline=None)
@given(strict_times(), st.sampled_from(["effectiveDateTime", "effectiveInstant", "issued"]))
def test_the_raw_time_is_the_time_the_reader_reads_once_validated(stamp: str, element: str) -> None:
    lab = observation(CALCIUM_MOLAR, value=2.5, unit="mmol/L", **{element: stamp})
    complete = snap(lab, decisive=False)
    read = complete.snapshot.measurements
    if not read:  # an instant must be a full dateTime: invalid, so never ranked before it is read
        assert complete.notes and complete.notes[0].startswith("Observation skipped")
        return
    assert raw_when(lab, AT.tzinfo or AT.astimezone().tzinfo) == read[0].when  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "stamp",
    ["2026-05-30T08:00:00", "2026-05-30T08:00Z", "2026-02-30", "2026-05-30T08:00:00.1234567Z", "20260530", 20260530],
)
def test_times_in_other_forms_are_not_ranked(stamp: object) -> None:
    assert raw_when({"effectiveDateTime": stamp}, AT.tzinfo) is None  # type: ignore[arg-type]


def test_raw_number_takes_plain_numbers_only() -> None:
    assert raw_number({"valueQuantity": {"value": 7.5}}) == 7.5
    assert raw_number({"valueInteger": 8}) == 8
    for resource in ({"valueQuantity": {"value": True}}, {"valueInteger": "8"}, {"valueQuantity": 3}, {}):
        assert raw_number(resource) is None


# -- the rules answer the same ----------------------------------------------------------

# A pool of times, so that results often fall in the same windows or at the same time.
TIME_POOL = [
    ago(-1),  # results "from the future": clocks disagree
    ago(hours=2),
    ago(1),
    ago(1),
    ago(1, hours=1),
    ago(1, hours=30),
    ago(2),
    ago(6, hours=23),
    ago(8),
    ago(30),
    day_ago(1),
    day_ago(2),
    "2026-05",
    "2026",
    "2026-05-30T08:00:00",
    "2026-05-30T08:00:60Z",
    "not a time",
    # FHIR-valid sentinels: an open end, the first day written at the farthest offset
    "9999-12-31",
    "9999-12-31T23:59:59.999-14:00",
    "0001-01-01T00:00:00+14:00",
    "0001",
]
stamps = st.one_of(st.sampled_from(TIME_POOL), strict_times())
KINDS = [
    (CALCIUM_MASS, "mg/dL", 6.0, 18.0),
    (CALCIUM_MOLAR, "mmol/L", 1.5, 4.5),
    (CALCIUM_CORRECTED, "mmol/L", 1.5, 4.5),
    (ALBUMIN, "g/L", 15.0, 50.0),
    (ALBUMIN, "g/dL", 1.5, 5.0),
    (PAIN_SCORE, "{score}", 0.0, 10.0),
    (CALCIUM_MASS, "kg", 6.0, 18.0),
    (BODY_WEIGHT, "kg", 60.0, 90.0),
    (BODY_WEIGHT, "kg", 60.0, 90.0),
    (BODY_WEIGHT, "[lb_av]", 130.0, 200.0),
    (BODY_WEIGHT, "g", 60000.0, 90000.0),
    (BODY_WEIGHT, "stone", 9.0, 14.0),
]


@st.composite
def results(draw: st.DrawFn) -> Resource:
    """Calcium, albumin, pain-score and body-weight results with any time, value, status or defect."""
    code, unit, low, high = draw(st.sampled_from(KINDS))
    value = draw(
        st.one_of(
            st.floats(min_value=low, max_value=high, allow_nan=False).map(lambda number: round(number, 1)),
            st.integers(int(low), int(high)),
            st.sampled_from(["8", True, None]),
        )
    )
    time_element = draw(st.sampled_from(["effectiveDateTime", "effectiveDateTime", "issued", "effectivePeriod"]))
    stamp = draw(stamps)
    when: dict[str, Any] = {time_element: {"start": stamp} if time_element == "effectivePeriod" else stamp}
    status = draw(st.sampled_from(["final", "final", "amended", "preliminary"]))
    lab = observation(code, status=status, valueQuantity={"value": value, "unit": unit}, **when)
    if draw(st.integers(0, 5)) == 0:
        lab.update(INVALID)
    if draw(st.integers(0, 5)) == 0:
        lab.pop("valueQuantity")
        lab["valueInteger"] = value
    shape = draw(st.sampled_from(["plain"] * 6 + ["entered-in-error", "modifier", "contained", "versions"]))
    if shape == "entered-in-error":
        lab["status"] = "entered-in-error"
    elif shape == "modifier":
        lab["modifierExtension"] = [{"url": "https://example.org/modifier", "valueBoolean": True}]
    elif shape == "contained":
        # the result held inside a panel, as hasMember names it
        member = {key: item for key, item in lab.items() if key != "subject"} | {"id": "m1"}
        return observation("panel", "https://example.org/codes", contained=[member], hasMember=[{"reference": "#m1"}])
    elif shape == "versions":
        lab["meta"] = {"versionId": str(draw(st.integers(1, 3)))}
        lab["id"] = "versioned"  # several such results are versions of one resource
    return lab


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(results(), max_size=12),
    st.booleans(),
    st.booleans(),
    st.sampled_from(
        [
            ClinicalPolicy(),
            ClinicalPolicy(severe_pain_score=4.5, calcium_result_window_days=30, albumin_pairing_hours=200),
            ClinicalPolicy(severe_pain_score=0, calcium_result_window_days=1, albumin_pairing_hours=1),
            ClinicalPolicy(ng12_symptom_window_days=2, weight_loss_percent=1),
        ]
    ),
)
def test_the_rules_answer_as_if_every_result_had_been_read(
    labs: list[Resource], spinal_pain: bool, cancer: bool, policy: ClinicalPolicy
) -> None:
    pain = [condition(BACKACHE, onset=ago(5))] if spinal_pain else []
    # Without a cancer, one NG12 symptom: R6b then turns on weight loss.
    history = condition(NSCLC) if cancer else condition(FATIGUE, onset=ago(1))
    same_answer(record(history, *pain, *labs), policy, library())


WEIGHT_UNITS = [("kg", 60.0, 90.0), ("[lb_av]", 130.0, 200.0), ("g", 60000.0, 90000.0)]


@st.composite
def weights(draw: st.DrawFn) -> Resource:
    """Body weights in kg, pounds or grams, at any time, some of them invalid."""
    unit, low, high = draw(st.sampled_from(WEIGHT_UNITS))
    value = draw(st.floats(min_value=low, max_value=high, allow_nan=False).map(lambda number: round(number, 1)))
    measured = observation(BODY_WEIGHT, value=value, unit=unit, effective=draw(stamps))
    if draw(st.integers(0, 7)) == 0:
        measured.update(INVALID)
    return measured


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(weights(), min_size=2, max_size=8),
    st.sampled_from([ClinicalPolicy(), ClinicalPolicy(weight_loss_percent=2, ng12_symptom_window_days=10)]),
)
def test_weight_loss_answers_as_if_every_weight_had_been_read(measured: list[Resource], policy: ClinicalPolicy) -> None:
    # No cancer and one NG12 symptom: R6b turns on weight loss.
    same_answer(record(condition(FATIGUE, onset=ago(1)), *measured), policy, library())


def test_only_the_latest_weight_and_the_heaviest_before_it_are_validated() -> None:
    def weighed(value: float, days: float, **extra: Any) -> Resource:
        return observation(BODY_WEIGHT, value=value, unit="kg", effective=ago(days), **extra)

    heaviest, lighter, latest = weighed(80, 30), weighed(78, 20, **INVALID), weighed(75, 1)
    outside = weighed(90, 91, **INVALID)
    result = snap(heaviest, lighter, latest, outside)
    assert read_ids(result) == [rid(heaviest), rid(latest)]
    assert result.notes == ()
    broken_latest, broken_heaviest = weighed(74, 0.5, **INVALID), weighed(81, 25, **INVALID)
    fallback = snap(heaviest, broken_heaviest, latest, broken_latest)
    assert read_ids(fallback) == [rid(heaviest), rid(latest)]
    assert fallback.notes == (f"{INVALID_NOTE} (×2)",)
    same_answer(
        record(condition(FATIGUE, onset=ago(1)), heaviest, broken_heaviest, latest, broken_latest),
        ClinicalPolicy(),
        library(),
    )


def test_raw_kg_reads_the_unit_as_the_reader_does() -> None:
    assert raw_kg({"valueQuantity": {"value": 165, "unit": "lb", "system": UCUM, "code": "[lb_av]"}}) == Decimal(
        "74.84274105"
    )
    assert raw_kg({"valueQuantity": {"value": 75.5, "unit": "kg"}}) == Decimal("75.5")
    for odd in (
        {"valueQuantity": {"value": 75}},
        {"valueQuantity": {"value": "75", "unit": "kg"}},
        {"valueInteger": 75},
    ):
        assert raw_kg(odd) is None


def test_a_weight_is_validated_once_even_when_it_is_a_candidate_twice() -> None:
    # The latest weight has a Period (always read): the pending weights are then all
    # before it, and the invalid one is a candidate again, as the heaviest.
    kept = observation(BODY_WEIGHT, value=80, unit="kg", effective=ago(30))
    broken = observation(BODY_WEIGHT, value=85, unit="kg", effective=ago(10), **INVALID)
    period = {"effectivePeriod": {"start": ago(1), "end": ago(0.5)}}
    latest = observation(BODY_WEIGHT, value=75, unit="kg", **period)
    decisive, complete = snap(kept, broken, latest), snap(kept, broken, latest, decisive=False)
    assert decisive.notes == complete.notes == (INVALID_NOTE,)
    assert read_ids(decisive) == read_ids(complete) == [rid(kept), rid(latest)]
