"""R6a-c and R8: NICE NG12 suspected lung cancer for people without a known cancer."""

from __future__ import annotations

import pytest

from service.clinical.outcome import Screening
from service.clinical.policy import ClinicalPolicy
from tests.service.clinical.factories import (
    BODY_WEIGHT,
    BREAST_CANCER,
    COUGH,
    DYSPNOEA,
    EX_SMOKER,
    FATIGUE,
    HAEMOPTYSIS,
    NEVER_SMOKED,
    NSCLC,
    SMOKING_UNKNOWN,
    SNOMED,
    THORACIC_BACK_PAIN,
    THROMBOCYTOSIS,
    UCUM,
    WEIGHT_LOSS,
    Resource,
    ago,
    cards_of,
    condition,
    custom_library,
    observation,
    outcome,
    record,
    screen,
    smoking,
)

AGED_40 = "1986-06-01"  # 40th birthday on the hook date
AGED_39 = "1986-06-02"


def test_r6a_haemoptysis_at_40() -> None:
    result = screen(record(condition(HAEMOPTYSIS, onset=ago(5)), birth_date=AGED_40))
    assert cards_of(result) == [("R6a", "warning")]
    assert "Age 40 at this check." in (result.cards[0].detail or "")


def test_r6a_not_at_39() -> None:
    assert cards_of(screen(record(condition(HAEMOPTYSIS, onset=ago(5)), birth_date=AGED_39))) == []


def test_partial_birth_date_straddling_40_is_insufficient() -> None:
    result = screen(record(condition(HAEMOPTYSIS, onset=ago(5)), birth_date="1986"))
    assert outcome(result, "R6a") == "insufficient_data"
    assert cards_of(result) == []


def test_no_birth_date_is_insufficient() -> None:
    result = screen(record(condition(HAEMOPTYSIS, onset=ago(5)), birth_date=None))
    assert outcome(result, "R6a") == "insufficient_data"


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ([condition(COUGH, onset=ago(10)), condition(FATIGUE, onset=ago(10))], [("R6b", "warning")]),
        ([condition(COUGH, onset=ago(10)), smoking(EX_SMOKER)], [("R6b", "warning")]),
        ([condition(COUGH, onset=ago(10)), smoking(NEVER_SMOKED)], []),
        ([condition(COUGH, onset=ago(10)), condition(COUGH, onset=ago(3))], []),  # distinct symptoms count
        ([condition(COUGH, onset=ago(91)), condition(FATIGUE, onset=ago(10))], []),
    ],
)
def test_r6b_symptom_count_and_smoking(resources: list[dict[str, object]], expected: list[tuple[str, str]]) -> None:
    assert cards_of(screen(record(*resources, birth_date=AGED_40))) == expected


def test_r6b_one_symptom_with_unknown_smoking_is_insufficient() -> None:
    for extra in ([], [smoking(SMOKING_UNKNOWN)]):
        result = screen(record(condition(COUGH, onset=ago(3)), *extra, birth_date=AGED_40))
        assert cards_of(result) == []
        assert outcome(result, "R6b") == "insufficient_data"


def test_r6b_never_and_ever_records_mean_ever() -> None:
    resources = (condition(COUGH, onset=ago(3)), smoking(NEVER_SMOKED), smoking(EX_SMOKER))
    assert cards_of(screen(record(*resources, birth_date=AGED_40))) == [("R6b", "warning")]


def pack_years(
    value: object, *, code: str = "401201003", days: float = 400, status: str = "final", **value_element: object
) -> Resource:
    """A US Core pack-years Observation (valueQuantity in {pack-years}), recorded ``days`` ago."""
    element = value_element or {"valueQuantity": {"value": value, "unit": "{pack-years}", "system": UCUM}}
    return observation(code, SNOMED, effective=ago(days), status=status, **element)


@pytest.mark.parametrize("code", ["401201003", "782516008"])
def test_r6b_more_than_zero_pack_years_mean_ever_smoked_however_long_ago(code: str) -> None:
    result = screen(record(condition(COUGH, onset=ago(3)), pack_years(26, code=code, days=3000), birth_date=AGED_40))
    assert cards_of(result) == [("R6b", "warning")]
    assert "26 pack-years" in (result.cards[0].detail or "")


@pytest.mark.parametrize(
    "pack_years_record",
    [
        pack_years(0),
        pack_years(None, valueInteger=0),
        pack_years(26, status="preliminary"),
        pack_years(None, valueString="twenty"),
    ],
)
def test_r6b_zero_pending_or_unreadable_pack_years_say_nothing(pack_years_record: Resource) -> None:
    result = screen(record(condition(COUGH, onset=ago(3)), pack_years_record, birth_date=AGED_40))
    assert cards_of(result) == []
    assert outcome(result, "R6b") == "insufficient_data"  # as without any smoking record


def test_pack_years_as_an_integer_count_too() -> None:
    result = screen(record(condition(COUGH, onset=ago(3)), pack_years(None, valueInteger=12), birth_date=AGED_40))
    assert cards_of(result) == [("R6b", "warning")]


def test_unknown_smoking_is_mentioned_when_it_decides_r6b() -> None:
    resources = (condition(THROMBOCYTOSIS, onset=ago(3)), condition(COUGH, onset=ago(3)))
    result = screen(record(*resources, birth_date=AGED_40))
    assert cards_of(result) == [("R6c", "info")]
    assert outcome(result, "R6b") == "insufficient_data"
    assert "Smoking status: not recorded" in (result.cards[0].detail or "")
    # without an NG12 symptom, smoking changes nothing and is not mentioned
    alone = screen(record(condition(THROMBOCYTOSIS, onset=ago(3)), birth_date=AGED_40))
    assert "Smoking status" not in (alone.cards[0].detail or "")


def test_r6a_outranks_and_folds_r6b_and_r6c() -> None:
    resources = (
        condition(HAEMOPTYSIS, onset=ago(2)),
        condition(COUGH, onset=ago(2)),
        condition(DYSPNOEA, onset=ago(2)),
        condition(THROMBOCYTOSIS, onset=ago(2)),
    )
    result = screen(record(*resources, birth_date=AGED_40))
    assert cards_of(result) == [("R6a", "warning")]
    assert (outcome(result, "R6b"), outcome(result, "R6c")) == ("suppressed", "suppressed")


@pytest.mark.parametrize(
    "cancer", [condition(NSCLC, clinical="resolved"), condition("Z85.118", "http://hl7.org/fhir/sid/icd-10-cm")]
)
def test_never_with_known_lung_cancer(cancer: dict[str, object]) -> None:
    result = screen(record(cancer, condition(HAEMOPTYSIS, onset=ago(2)), birth_date=AGED_40))
    assert cards_of(result) == []
    assert outcome(result, "R6a") == "not_fired"


def test_cancer_scope_any_counts_other_cancers() -> None:
    resources = (condition(BREAST_CANCER), condition(HAEMOPTYSIS, onset=ago(2)))
    assert cards_of(screen(record(*resources, birth_date=AGED_40))) == [("R6a", "warning")]
    any_scope = ClinicalPolicy(cancer_scope="any")
    assert cards_of(screen(record(*resources, birth_date=AGED_40), policy=any_scope)) == []


def test_r8_adds_the_spinal_line() -> None:
    resources = (condition(HAEMOPTYSIS, onset=ago(2)), condition(THORACIC_BACK_PAIN, onset=ago(5)))
    result = screen(record(*resources, birth_date=AGED_40))
    assert cards_of(result) == [("R6a", "warning")]
    assert outcome(result, "R8") == "fired"
    assert "consider spinal metastases" in (result.cards[0].detail or "")


def test_r8_needs_an_r6a_or_r6b_card() -> None:
    resources = (condition(THROMBOCYTOSIS, onset=ago(2)), condition(THORACIC_BACK_PAIN, onset=ago(5)))
    result = screen(record(*resources, birth_date=AGED_40))
    assert cards_of(result) == [("R6c", "info")]
    assert outcome(result, "R8") == "not_fired"


def test_r6b_card_says_when_imaging_procedures_could_not_be_read() -> None:
    # R9 reads chest X-rays and CTs from Procedures too: an unreadable key may hide one.
    resources = (condition(COUGH, onset=ago(5)), condition(DYSPNOEA, onset=ago(5)))
    result = screen(record(*resources, birth_date="1970-01-01", gaps=["imagingProcedures"]))
    assert cards_of(result) == [("R6b", "warning")]
    assert "Could not read: imaging procedures" in (result.cards[0].detail or "")


# -- NG12 weight loss measured: a fall in body weight (docs/clinical/decision-table.md#derived-facts NG12_SX) ----


def weight(value: float, days: float, unit: str | None = "kg", **extra: object) -> Resource:
    return observation(BODY_WEIGHT, value=value, unit=unit, effective=ago(days), **extra)


def weight_loss(result: Screening) -> list[str]:
    """The card's weight-loss evidence lines."""
    detail = result.cards[0].detail or "" if result.cards else ""
    return [line for line in detail.splitlines() if "weight loss" in line]


@pytest.mark.parametrize(
    ("weights", "fires"),
    [
        ((weight(80, 60), weight(75.2, 2)), True),  # 6 %
        ((weight(80, 60), weight(76, 2)), True),  # exactly 5 %: the threshold counts
        ((weight(80, 60), weight(76.1, 2)), False),  # 4.875 %
        ((weight(75.2, 60), weight(80, 2)), False),  # a gain
        ((weight(80, 95), weight(75, 2)), False),  # the heaviest is older than the 90-day window
        ((weight(80, 60), weight(70, 30), weight(79, 2)), False),  # only the latest weight is compared
        ((weight(176, 60, "[lb_av]"), weight(165, 2, "[lb_av]")), True),  # pounds: 6.25 %
        ((weight(80, 60), weight(165, 2, "[lb_av]")), True),  # 74.8 kg: units mixed
        ((weight(80000, 60, "g"), weight(75, 2)), True),
        ((weight(75, 2),), False),  # one weight: no fall to measure
    ],
)
def test_a_fall_in_body_weight_is_the_ng12_symptom_weight_loss(weights: tuple[Resource, ...], fires: bool) -> None:
    # With fatigue, a second symptom makes R6b fire without any smoking history.
    result = screen(record(condition(FATIGUE, onset=ago(3)), *weights, birth_date=AGED_40))
    assert cards_of(result) == ([("R6b", "warning")] if fires else [])
    assert bool(weight_loss(result)) == fires


def test_the_card_shows_the_heaviest_and_the_latest_weight() -> None:
    result = screen(record(condition(FATIGUE, onset=ago(3)), weight(80, 60), weight(75.2, 2), birth_date=AGED_40))
    heaviest, latest = weight_loss(result)
    assert "80 kg, the heaviest in 90 days" in heaviest
    assert "75.2 kg, 6.0 % less" in latest


def test_a_coded_weight_loss_and_a_measured_fall_are_one_symptom() -> None:
    weights = (condition(WEIGHT_LOSS, onset=ago(5)), weight(80, 60), weight(75, 2))
    assert cards_of(screen(record(*weights, birth_date=AGED_40))) == []  # one symptom, smoking unknown


def test_the_threshold_is_the_policy() -> None:
    resources = (condition(FATIGUE, onset=ago(3)), weight(80, 60), weight(77.6, 2))  # 3 %
    assert cards_of(screen(record(*resources, birth_date=AGED_40))) == []
    policy = ClinicalPolicy(weight_loss_percent=3)
    assert cards_of(screen(record(*resources, birth_date=AGED_40), policy=policy)) == [("R6b", "warning")]


@pytest.mark.parametrize(
    ("odd", "note"),
    [
        (weight(75, 2, unit=None), "Observation skipped: body weight without unit"),
        (weight(75, 2, unit="stone"), "Observation skipped: body weight unit not recognised"),
    ],
)
def test_a_weight_without_a_known_unit_is_skipped_with_a_note(odd: Resource, note: str) -> None:
    result = screen(record(condition(FATIGUE, onset=ago(3)), weight(80, 60), odd, birth_date=AGED_40))
    assert cards_of(result) == []
    assert note in result.notes


def test_weight_loss_is_unknown_when_the_weights_could_not_be_read() -> None:
    # One symptom and never smoked: R6b turns on whether weight loss is a second symptom.
    resources = (condition(FATIGUE, onset=ago(3)), smoking(NEVER_SMOKED))
    assert outcome(screen(record(*resources, birth_date=AGED_40)), "R6b") == "not_fired"
    unreadable = screen(record(*resources, birth_date=AGED_40, gaps=["labs"]))
    assert outcome(unreadable, "R6b") == "insufficient_data"


@pytest.mark.parametrize(
    ("without", "result"), [(["body-weight"], "not_fired"), (["body-weight", "ng12-weight-loss"], "insufficient_data")]
)
def test_weight_loss_is_unknown_only_without_either_code_list(without: list[str], result: str) -> None:
    resources = (condition(FATIGUE, onset=ago(3)), smoking(NEVER_SMOKED))
    screening = screen(record(*resources, birth_date=AGED_40), valuesets=custom_library(without=without))
    assert outcome(screening, "R6b") == result
