"""Calcium, albumin and body-weight units, and the CKS albumin adjustment, in exact decimals."""

from __future__ import annotations

from decimal import Decimal

import pytest

from service.clinical.units import (
    UCUM,
    adjusted_calcium,
    albumin_g_per_l,
    body_weight_kg,
    calcium_mmol_per_l,
    reported_unit,
)


@pytest.mark.parametrize(
    ("value", "unit", "mmol"),
    [
        ("2.50", "mmol/L", "2.50"),
        ("2.50", "mmol/l", "2.50"),
        ("10", "mg/dL", "2.50"),
        ("10", "mg/dl", "2.50"),
        ("100", "mg/L", "2.500"),
        ("5", "mEq/L", "2.5"),
    ],
)
def test_calcium_converts_to_mmol_per_l(value: str, unit: str, mmol: str) -> None:
    assert calcium_mmol_per_l(Decimal(value), unit) == Decimal(mmol)


def test_unknown_units_are_refused() -> None:
    assert calcium_mmol_per_l(Decimal(10), "mg") is None
    assert albumin_g_per_l(Decimal(3), "mg/dL") is None


def test_albumin_converts_to_g_per_l() -> None:
    assert albumin_g_per_l(Decimal("3.0"), "g/dL") == Decimal("30.0")
    assert albumin_g_per_l(Decimal(30), "g/L") == Decimal(30)


def test_adjusted_calcium_is_the_cks_formula_exactly() -> None:
    # 2.5 + 0.02 × (40 − 15) = 3.0 exactly: band edges must compare exactly.
    assert adjusted_calcium(Decimal("2.5"), Decimal(15)) == Decimal("3.00")
    assert adjusted_calcium(Decimal("2.5"), Decimal(45)) == Decimal("2.40")
    # docs/clinical/evidence.md#hypercalcaemia: 12.5 mg/dL with 3.0 g/dL albumin ≈ 13.3 mg/dL ≈ 3.32 mmol/L
    measured = calcium_mmol_per_l(Decimal("12.5"), "mg/dL")
    albumin = albumin_g_per_l(Decimal("3.0"), "g/dL")
    assert measured is not None and albumin is not None
    assert adjusted_calcium(measured, albumin).quantize(Decimal("0.01")) == Decimal("3.32")


@pytest.mark.parametrize(
    ("value", "unit", "kg"),
    [
        ("75.5", "kg", "75.5"),
        ("75500", "g", "75.5000"),
        ("100", "[lb_av]", "45.359237"),
        ("100", "lb", "45.359237"),
        ("100", " LBS ", "45.359237"),
    ],
)
def test_body_weight_in_kg(value: str, unit: str, kg: str) -> None:
    assert body_weight_kg(Decimal(value), unit) == Decimal(kg)


@pytest.mark.parametrize("unit", ["stone", "kg/m2", "", "[oz_av]"])
def test_other_weight_units_are_not_read(unit: str) -> None:
    assert body_weight_kg(Decimal(70), unit) is None


@pytest.mark.parametrize(
    ("code", "unit", "system", "reported"),
    [
        ("[lb_av]", "lb", UCUM, "[lb_av]"),  # a UCUM code wins over the text
        ("[lb_av]", "lb", "http://example.org/units", "lb"),  # a code of another system does not
        (None, "kg", None, "kg"),
        ("kg", None, None, "kg"),
        (None, None, UCUM, None),
        (None, 3, None, None),  # not text
    ],
)
def test_the_unit_a_quantity_reports(code: object, unit: object, system: object, reported: str | None) -> None:
    assert reported_unit(code, unit, system) == reported
