"""Units: calcium to mmol/L, albumin to g/L, the albumin adjustment, body weight to kg, and each as a :class:`Measure`.

Arithmetic is in ``Decimal`` so that band edges compare exactly (3.0 is 3.0, not
2.9999999999999996) and every conversion is computed from one constant, never
duplicated as a second set of band edges in another unit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from service.fastinit import fast_init

__all__ = [
    "ALBUMIN",
    "ALBUMIN_REFERENCE_G_PER_L",
    "BODY_WEIGHT",
    "CALCIUM",
    "CALCIUM_MG_PER_DL_TO_MMOL_PER_L",
    "UCUM",
    "Measure",
    "adjusted_calcium",
    "albumin_g_per_l",
    "body_weight_kg",
    "calcium_mmol_per_l",
    "reported_unit",
]

#: 1 mg/dL = 0.25 mmol/L: the clinical conversion ("divide by 4"), not the molar-mass
#: 0.2495 (40.08 g/mol). Three reasons: the decision table pairs its edges exactly so
#: (3.5 mmol/L with 14 mg/dL, 3.0 with 12; docs/clinical/decision-table.md#rules); the two published
#: correction formulas agree only under it (US +0.8 mg/dL per g/dL of albumin = CKS
#: +0.02 mmol/L per g/L); and at an edge it picks the more urgent band, where 0.2495
#: would read a reported 14.0 mg/dL as 3.493 mmol/L, i.e. moderate. The 0.2 % difference
#: is far below a calcium assay's imprecision.
CALCIUM_MG_PER_DL_TO_MMOL_PER_L = Decimal("0.25")
#: CKS: adjusted Ca (mmol/L) = measured Ca + 0.02 × (40 − albumin g/L).
ALBUMIN_REFERENCE_G_PER_L = Decimal(40)
_ADJUSTMENT_PER_G_PER_L = Decimal("0.02")

# Keys are lower-cased: UCUM is case-sensitive, but "mg/dl" and "mmol/l" are what many
# laboratory systems send in Quantity.unit, and no other unit shares those spellings.
_CALCIUM_TO_MMOL_PER_L = {
    "mmol/l": Decimal(1),
    "mg/dl": CALCIUM_MG_PER_DL_TO_MMOL_PER_L,
    "mg/l": CALCIUM_MG_PER_DL_TO_MMOL_PER_L / 10,
    # calcium is divalent: 2 mEq per mmol
    "meq/l": Decimal("0.5"),
}
_ALBUMIN_TO_G_PER_L = {"g/l": Decimal(1), "g/dl": Decimal(10)}
# The UCUM units of the US Core body-weight profile (kg, g, [lb_av]); "lb" and "lbs" are
# what a Quantity.unit says when the code is [lb_av]. The avoirdupois pound is exactly
# 0.45359237 kg.
_WEIGHT_TO_KG = {
    "kg": Decimal(1),
    "g": Decimal("0.001"),
    "[lb_av]": Decimal("0.45359237"),
    "lb": Decimal("0.45359237"),
    "lbs": Decimal("0.45359237"),
}


UCUM = "http://unitsofmeasure.org"


def reported_unit(code: object, unit: object, system: object) -> str | None:
    """The unit a Quantity reports: its UCUM code, else its ``unit`` text, else its code."""
    chosen = code if code and system == UCUM else unit or code
    return chosen if isinstance(chosen, str) else None


def calcium_mmol_per_l(value: Decimal, unit: str) -> Decimal | None:
    """Calcium in mmol/L, or ``None`` when ``unit`` is not a calcium concentration unit we know."""
    factor = _CALCIUM_TO_MMOL_PER_L.get(unit.strip().lower())
    return None if factor is None else value * factor


def albumin_g_per_l(value: Decimal, unit: str) -> Decimal | None:
    """Albumin in g/L, or ``None`` when ``unit`` is not g/L or g/dL."""
    factor = _ALBUMIN_TO_G_PER_L.get(unit.strip().lower())
    return None if factor is None else value * factor


def body_weight_kg(value: Decimal, unit: str) -> Decimal | None:
    """Body weight in kg, or ``None`` when ``unit`` is not kg, g or the avoirdupois pound."""
    factor = _WEIGHT_TO_KG.get(unit.strip().lower())
    return None if factor is None else value * factor


def adjusted_calcium(calcium_mmol: Decimal, albumin_g_l: Decimal) -> Decimal:
    """Albumin-adjusted calcium (mmol/L), NICE CKS formula.

    It is approximate at extreme albumin, with paraproteinaemia or acidosis (ionised
    calcium is the better test then); cards say so.
    """
    return calcium_mmol + _ADJUSTMENT_PER_G_PER_L * (ALBUMIN_REFERENCE_G_PER_L - albumin_g_l)


@fast_init
@dataclass(frozen=True, slots=True)
class Measure:
    """A quantity compared in one unit: its name on a data note, and how a result's unit is read."""

    kind: str
    #: the value in the compared unit; ``None`` when the reported unit is not one of this quantity
    convert: Callable[[Decimal, str], Decimal | None]
    #: the unit a result reported without one is read in (from its value sets and value); ``None``: unreadable
    customary: Callable[[frozenset[str], Decimal], str | None]


def _calcium_customary(groups: frozenset[str], value: Decimal) -> str:
    # The LOINC code fixes the property: 17861-6 and 49765-1 (calcium-total-mass) are mass
    # concentrations reported in mg/dL, 2000-8 and 29265-6 substance concentrations in mmol/L.
    return "mg/dL" if "calcium-total-mass" in groups else "mmol/L"


def _albumin_customary(groups: frozenset[str], value: Decimal) -> str:
    # Serum albumin is 10-60 g/L, i.e. 1-6 g/dL: the magnitude tells the two apart.
    return "g/dL" if value < 10 else "g/L"


def _no_customary_unit(groups: frozenset[str], value: Decimal) -> None:
    # A body weight has none: 70 is as plausible in kg as in pounds.
    return None


CALCIUM = Measure("calcium", calcium_mmol_per_l, _calcium_customary)
ALBUMIN = Measure("albumin", albumin_g_per_l, _albumin_customary)
BODY_WEIGHT = Measure("body weight", body_weight_kg, _no_customary_unit)
