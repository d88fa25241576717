"""R4a-c: hypercalcaemia bands on albumin-adjusted calcium, in both unit systems."""

from __future__ import annotations

from decimal import Decimal

import pytest

from service.clinical.policy import ClinicalPolicy
from service.clinical.rules.calcium import MILD_ABOVE, MODERATE_FROM, SEVERE_FROM
from service.clinical.units import CALCIUM_MG_PER_DL_TO_MMOL_PER_L
from tests.service.clinical.factories import (
    ALBUMIN,
    CALCIUM_CORRECTED,
    CALCIUM_MASS,
    CALCIUM_MOLAR,
    NSCLC,
    ago,
    cards_of,
    condition,
    custom_library,
    observation,
    outcome,
    record,
    screen,
)


def calcium(value: float | str, unit: str = "mmol/L", code: str = CALCIUM_MOLAR, days: float = 1) -> dict[str, object]:
    return observation(code, value=float(value), unit=unit, effective=ago(days))


def card(*resources: dict[str, object]) -> list[tuple[str, str]]:
    return cards_of(screen(record(*resources)))


@pytest.mark.parametrize(
    ("mmol", "expected"),
    [
        ("3.60", [("R4a", "critical")]),
        ("3.50", [("R4a", "critical")]),
        ("3.49", [("R4b", "warning")]),
        ("3.00", [("R4b", "warning")]),
        ("2.99", [("R4c", "info")]),
        ("2.61", [("R4c", "info")]),
        ("2.60", []),  # "> 2.6": the edge itself is not hypercalcaemia
        ("2.40", []),
    ],
)
def test_bands_in_mmol_per_l(mmol: str, expected: list[tuple[str, str]]) -> None:
    assert card(calcium(mmol)) == expected


def mg_per_dl(mmol: Decimal) -> Decimal:
    return mmol / CALCIUM_MG_PER_DL_TO_MMOL_PER_L


@pytest.mark.parametrize(
    ("mg", "expected"),
    [
        (mg_per_dl(SEVERE_FROM) + Decimal("0.001"), [("R4a", "critical")]),
        (mg_per_dl(SEVERE_FROM) - Decimal("0.001"), [("R4b", "warning")]),
        (Decimal("14.0"), [("R4a", "critical")]),  # the table pairs ≥ 14 mg/dL with ≥ 3.5 mmol/L
        (mg_per_dl(MODERATE_FROM) + Decimal("0.001"), [("R4b", "warning")]),
        (Decimal("12.0"), [("R4b", "warning")]),  # the table's moderate band starts at 12 mg/dL
        (Decimal("13.99"), [("R4b", "warning")]),
        (mg_per_dl(MILD_ABOVE) + Decimal("0.001"), [("R4c", "info")]),
        (mg_per_dl(MILD_ABOVE), []),
    ],
)
def test_bands_in_mg_per_dl_are_converted_not_duplicated(mg: Decimal, expected: list[tuple[str, str]]) -> None:
    assert card(calcium(str(mg), "mg/dL", CALCIUM_MASS)) == expected


def test_the_blood_calcium_code_counts_too() -> None:
    assert card(calcium("14.1", "mg/dL", "49765-1")) == [("R4a", "critical")]


@pytest.mark.parametrize(
    ("total", "albumin", "expected"),
    [
        # 2.50 + 0.02 × (40 − 15) = 3.00 mmol/L
        (("2.50", "mmol/L", CALCIUM_MOLAR), ("15", "g/L"), [("R4b", "warning")]),
        (("2.50", "mmol/L", CALCIUM_MOLAR), ("1.5", "g/dL"), [("R4b", "warning")]),
        # 12.5 mg/dL with 3.0 g/dL albumin: 3.32 mmol/L adjusted
        (("12.5", "mg/dL", CALCIUM_MASS), ("3.0", "g/dL"), [("R4b", "warning")]),
        # high albumin corrects a 2.7 down to 2.6: no card
        (("2.70", "mmol/L", CALCIUM_MOLAR), ("45", "g/L"), []),
    ],
)
def test_albumin_adjustment(
    total: tuple[str, str, str], albumin: tuple[str, str], expected: list[tuple[str, str]]
) -> None:
    value, unit, code = total
    resources = (
        calcium(value, unit, code),
        observation(ALBUMIN, value=float(albumin[0]), unit=albumin[1], effective=ago(1)),
    )
    assert card(*resources) == expected


@pytest.mark.parametrize(("hours", "expected"), [(48, [("R4b", "warning")]), (49, [("R4c", "info")])])
def test_albumin_only_within_the_pairing_window(hours: int, expected: list[tuple[str, str]]) -> None:
    albumin = observation(ALBUMIN, value=20, unit="g/L", effective=ago(days=1, hours=hours))
    # 2.70 unadjusted is mild; adjusted with albumin 20 g/L it is 3.10 (moderate)
    assert card(calcium("2.70"), albumin) == expected


def test_nearest_albumin_is_used() -> None:
    near = observation(ALBUMIN, value=40, unit="g/L", effective=ago(days=1, hours=1))
    far = observation(ALBUMIN, value=20, unit="g/L", effective=ago(days=1, hours=30))
    assert card(calcium("2.70"), near, far) == [("R4c", "info")]


def test_reported_corrected_calcium_is_taken_as_is() -> None:
    corrected = observation(CALCIUM_CORRECTED, value=3.1, unit="mmol/L", effective=ago(1))
    result = screen(record(corrected))
    assert cards_of(result) == [("R4b", "warning")]
    assert result.cards[0].summary.startswith("Corrected calcium 3.10 mmol/L (moderate)")


def test_reported_corrected_wins_at_the_same_time() -> None:
    time = ago(1)
    total = observation(CALCIUM_MOLAR, value=3.6, unit="mmol/L", effective=time)
    corrected = observation(CALCIUM_CORRECTED, value=3.1, unit="mmol/L", effective=time)
    assert card(total, corrected) == [("R4b", "warning")]


def test_latest_result_wins() -> None:
    assert card(calcium("3.6", days=3), calcium("2.4", days=1)) == []
    assert card(calcium("2.4", days=3), calcium("3.6", days=1)) == [("R4a", "critical")]


@pytest.mark.parametrize(("days", "fires"), [(7, True), (8, False)])
def test_result_window_edge(days: int, fires: bool) -> None:
    assert (card(calcium("3.6", days=days)) == [("R4a", "critical")]) is fires


def test_result_window_is_policy() -> None:
    result = screen(record(calcium("3.6", days=10)), policy=ClinicalPolicy(calcium_result_window_days=14))
    assert cards_of(result) == [("R4a", "critical")]


def test_preliminary_results_are_ignored() -> None:
    assert card(observation(CALCIUM_MOLAR, value=3.6, unit="mmol/L", effective=ago(1), status="preliminary")) == []


def test_unadjusted_value_is_used_and_said_so() -> None:
    result = screen(record(calcium("3.1")))
    assert cards_of(result) == [("R4b", "warning")]
    assert result.cards[0].summary.startswith("Calcium (unadjusted) 3.10 mmol/L")
    assert "No albumin within the pairing window" in (result.cards[0].detail or "")


def test_with_cancer_the_card_asks_for_acute_oncology() -> None:
    result = screen(record(calcium("3.6"), condition(NSCLC)))
    assert "liaise with acute oncology" in (result.cards[0].detail or "")
    assert "acute oncology" not in (screen(record(calcium("3.6"))).cards[0].detail or "")


def test_unreadable_labs_make_every_band_insufficient() -> None:
    result = screen(record(gaps=["labs"]))
    assert [outcome(result, rule_id) for rule_id in ("R4a", "R4b", "R4c")] == ["insufficient_data"] * 3
    assert [outcome(screen(record()), rule_id) for rule_id in ("R4a", "R4b", "R4c")] == ["not_fired"] * 3


def test_without_calcium_value_sets_the_bands_are_insufficient() -> None:
    valuesets = custom_library(without=("calcium-total-mass", "calcium-total-molar", "calcium-corrected"))
    result = screen(record(calcium("3.6")), valuesets=valuesets)
    assert cards_of(result) == []
    assert outcome(result, "R4a") == "insufficient_data"


def test_shown_value_never_crosses_a_band_edge() -> None:
    result = screen(record(calcium("2.999")))
    assert result.cards[0].summary.startswith("Calcium (unadjusted) 2.99 mmol/L (mild)")


def test_absurd_values_still_make_a_valid_card() -> None:
    result = screen(record(calcium("1e20")))
    assert cards_of(result) == [("R4a", "critical")]
    assert "1.00E+20 mmol/L" in result.cards[0].summary
