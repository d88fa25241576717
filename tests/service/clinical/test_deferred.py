"""Deferred validation: of the numeric results, only those a measured fact's selection can choose are validated.

The snapshot must be the same as when every result is validated (``every_result``), so
every rule answers alike with the same evidence. Results that are never validated add
no notes: the tests use an invalid result's note as the witness that it was (or was not)
validated.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.clinical.deferred import may_be_since, raw_number, raw_value, raw_when
from service.clinical.policy import ClinicalPolicy
from service.clinical.resource_reader import Reader
from service.clinical.rules.facts import weight_selections
from service.clinical.selection import Selection
from service.clinical.snapshot import SnapshotResult
from service.clinical.snapshot_reader import build_snapshot
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
    every: bool = False,
    policy: ClinicalPolicy | None = None,
    valuesets: ValueSetLibrary | None = None,
) -> SnapshotResult:
    return build_snapshot(
        record(*resources), AT, valuesets or library(), policy or ClinicalPolicy(), every_result=every
    )


def read_ids(result: SnapshotResult) -> list[str | None]:
    return [item.source.id for item in result.snapshot.measurements]


def rid(resource: Resource) -> str:
    return str(resource["id"])


def _message(note: str) -> str:
    return note.split(" (×")[0]


def same_snapshot(patient_record: PatientRecord, policy: ClinicalPolicy, valuesets: ValueSetLibrary) -> None:
    """The snapshot is the same whether every result was validated or only those that could be chosen.

    The deferred path reports no defect that a full validation does not: it validates a subset.
    """
    fast, full = (build_snapshot(patient_record, AT, valuesets, policy, every_result=every) for every in (False, True))
    assert fast.snapshot == full.snapshot
    assert {_message(note) for note in fast.notes} <= {_message(note) for note in full.notes}


# -- pain scores ------------------------------------------------------------------------


def test_a_low_pain_score_is_never_validated_and_never_changes_an_answer() -> None:
    low = observation(PAIN_SCORE, value=3, unit="{score}", effective=ago(1), **INVALID)
    severe = observation(PAIN_SCORE, value=8, unit="{score}", effective=ago(2))
    full = snap(low, severe, every=True)
    assert full.notes == (INVALID_NOTE,)
    fast = snap(low, severe)
    assert fast.notes == ()
    assert read_ids(fast) == read_ids(full) == [rid(severe)]
    same_snapshot(record(condition(NSCLC), condition(BACKACHE, onset=ago(5)), low, severe), ClinicalPolicy(), library())


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
    assert snap(score).notes == snap(score, every=True).notes
    assert read_ids(snap(score)) == read_ids(snap(score, every=True))


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
    assert snap(older, latest, every=True).notes != ()
    result = snap(older, latest)
    assert read_ids(result) == [rid(latest)] and result.notes == ()


def test_an_invalid_newest_calcium_falls_back_to_the_previous_valid_one() -> None:
    oldest, previous, newest = calcium(3, value=9), calcium(2, value=13), calcium(1, value=15, **INVALID)
    result = snap(oldest, previous, newest)
    assert read_ids(result) == [rid(previous)]
    assert result.notes == (INVALID_NOTE,)
    same_snapshot(record(oldest, previous, newest), ClinicalPolicy(), library())


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
    old = calcium(window + 1, **INVALID)
    assert snap(old, every=True).notes == (INVALID_NOTE,)
    assert snap(old).notes == ()
    assert read_ids(snap(old, every=True)) == read_ids(snap(old)) == []
    same_snapshot(record(old), ClinicalPolicy(), library())


def test_at_the_same_time_a_reported_corrected_calcium_wins_and_needs_no_albumin() -> None:
    total = calcium(1, code=CALCIUM_MOLAR, value=2.9)
    corrected = calcium(1, code=CALCIUM_CORRECTED, value=3.1)
    albumin = observation(ALBUMIN, value=30, unit="g/L", effective=ago(1))
    assert read_ids(snap(total, corrected, albumin)) == [rid(corrected)]
    same_snapshot(record(total, corrected, albumin), ClinicalPolicy(), library())


def test_at_the_same_time_the_first_in_record_order_wins_and_the_next_if_it_is_invalid() -> None:
    first, second = calcium(1, value=11), calcium(1, value=13)
    assert read_ids(snap(first, second)) == [rid(first)]
    broken = calcium(1, value=11, **INVALID)
    assert read_ids(snap(broken, second)) == [rid(second)]
    same_snapshot(record(broken, second), ClinicalPolicy(), library())


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
    same_snapshot(record(farther, nearest, total, outside, next_nearest), ClinicalPolicy(), library())


def test_between_albumins_as_near_the_first_in_record_order_wins_and_the_next_if_it_is_invalid() -> None:
    total = calcium(1, code=CALCIUM_MOLAR, value=2.9)
    before, after = albumin(1, hours=2), albumin(1, hours=-2)
    assert read_ids(snap(total, after, before)) == [rid(total), rid(after)]
    broken = albumin(1, hours=-2, **INVALID)
    assert read_ids(snap(total, broken, before)) == [rid(total), rid(before)]
    same_snapshot(record(total, broken, before), ClinicalPolicy(), library())


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
    assert snap(odd, latest).notes == snap(odd, latest, every=True).notes
    assert read_ids(snap(odd, latest)) == read_ids(snap(odd, latest, every=True))


def test_a_code_in_two_selections_value_sets_is_chosen_by_each_on_its_own() -> None:
    both = custom_library(extra={"pain-severity": [(LOINC, CALCIUM_MASS)]})
    old_and_low = observation(CALCIUM_MASS, value=1, unit="mg/dL", effective=ago(30))
    assert read_ids(snap(old_and_low, valuesets=both)) == []  # too old a calcium, too low a pain score
    recent_and_high = observation(CALCIUM_MASS, value=8, unit="mg/dL", effective=ago(1))
    assert read_ids(snap(old_and_low, recent_and_high, valuesets=both)) == [rid(recent_and_high)]
    same_snapshot(record(old_and_low, recent_and_high), ClinicalPolicy(), both)


# -- the raw readings the order comes from ----------------------------------------------

offsets = st.sampled_from(["Z", "+00:00", "-00:00", "+01:00", "-03:30", "+05:45", "+14:00", "-12:00"])


@st.composite
def strict_times(draw: st.DrawFn) -> str:
    """FHIR date and dateTime values in the strict forms :func:`raw_when` ranks by."""
    # Within the measurement horizon (90 days), some in the future (clocks disagree).
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
    # A selection without a window chooses the one result, whenever it was taken.
    reader = Reader(library(), AT, (Selection("any calcium", frozenset({"calcium-total-molar"}), "latest"),))
    reader.read_all([lab], draft=False)
    reader.finish()
    read = reader.measurements
    if not read:  # an instant must be a full dateTime: invalid, so never ranked before it is read
        assert reader.notes.render() and reader.notes.render()[0].startswith("Observation skipped")
        return
    assert raw_when(lab, AT.tzinfo or AT.astimezone().tzinfo) == read[0].when  # type: ignore[arg-type]


@st.composite
def dated_results(draw: st.DrawFn) -> dict[str, Any]:
    """A calcium result dated every way FHIR allows (and some it does not), for the pre-filter."""

    def when() -> str:
        return draw(st.one_of(strict_times(), st.sampled_from(["2026-05-30T08:00:00", "garbage", "2026-02-30"])))

    dating: dict[str, Any] = {}
    for element in draw(st.sets(st.sampled_from(["effectiveDateTime", "effectiveInstant", "issued", "period"]))):
        if element == "period":
            dating["effectivePeriod"] = {key: when() for key in draw(st.sets(st.sampled_from(["start", "end"])))}
        else:
            dating[element] = when()
    return observation(CALCIUM_MOLAR, value=2.5, unit="mmol/L", **dating)


@settings(max_examples=300, deadline=None)
@given(dated_results(), st.integers(0, 60))
def test_the_raw_pre_filter_never_drops_a_result_taken_since(lab: Resource, days: int) -> None:
    since = AT - timedelta(days=days)
    reader = Reader(library(), AT, (Selection("any calcium", frozenset({"calcium-total-molar"}), "latest"),))
    reader.read_all([lab], draft=False)
    reader.finish()
    if reader.measurements and reader.measurements[0].when.end >= since:
        assert may_be_since(lab, since, AT.tzinfo)  # type: ignore[arg-type]


def test_a_period_with_a_coarse_start_may_end_after_its_end() -> None:
    # The reader spans a Period from its start's first instant to the later of the two
    # ends: "2026" ends on 31 December. The pre-filter once read the end alone and dropped it.
    period = {"start": "2026", "end": "2026-05-30T08:00:00Z"}
    lab = observation(CALCIUM_MOLAR, value=2.5, unit="mmol/L", effectivePeriod=period)
    assert may_be_since(lab, AT, AT.tzinfo)  # type: ignore[arg-type]
    assert not may_be_since(lab, AT.replace(year=2027), AT.tzinfo)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "stamp",
    ["2026-05-30T08:00:00", "2026-05-30T08:00Z", "2026-02-30", "2026-05-30T08:00:00.1234567Z", "20260530", 20260530],
)
def test_times_in_other_forms_are_not_ranked(stamp: object) -> None:
    assert raw_when({"effectiveDateTime": stamp}, AT.tzinfo) is None  # type: ignore[arg-type]


def test_raw_number_takes_plain_numbers_only() -> None:
    assert raw_number({"valueQuantity": {"value": 7.5}}) == Decimal("7.5")
    assert raw_number({"valueQuantity": {"value": 0.1}}) == Decimal("0.1")  # its shortest repr, as validation reads it
    assert raw_number({"valueInteger": 8}) == 8
    for resource in ({"valueQuantity": {"value": True}}, {"valueInteger": "8"}, {"valueQuantity": 3}, {}):
        assert raw_number(resource) is None


# -- the snapshot is the same -----------------------------------------------------------

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
def test_the_snapshot_is_the_same_as_with_every_result_validated(
    labs: list[Resource], spinal_pain: bool, cancer: bool, policy: ClinicalPolicy
) -> None:
    pain = [condition(BACKACHE, onset=ago(5))] if spinal_pain else []
    # Without a cancer, one NG12 symptom: R6b then turns on weight loss.
    history = condition(NSCLC) if cancer else condition(FATIGUE, onset=ago(1))
    same_snapshot(record(history, *pain, *labs), policy, library())


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
def test_weight_loss_reads_the_same_weights_as_with_every_weight_validated(
    measured: list[Resource], policy: ClinicalPolicy
) -> None:
    # No cancer and one NG12 symptom: R6b turns on weight loss.
    same_snapshot(record(condition(FATIGUE, onset=ago(1)), *measured), policy, library())


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
    same_snapshot(
        record(condition(FATIGUE, onset=ago(1)), heaviest, broken_heaviest, latest, broken_latest),
        ClinicalPolicy(),
        library(),
    )


def test_a_raw_weight_is_read_in_kg_as_the_reader_reads_it() -> None:
    heaviest = weight_selections(ClinicalPolicy())[1]

    def raw_kg(resource: Resource) -> Decimal | None:
        return raw_value(resource, heaviest)

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
    fast, full = snap(kept, broken, latest), snap(kept, broken, latest, every=True)
    assert fast.notes == full.notes == (INVALID_NOTE,)
    assert read_ids(fast) == read_ids(full) == [rid(kept), rid(latest)]
