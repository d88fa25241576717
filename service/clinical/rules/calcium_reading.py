"""CA_CORR of docs/clinical/decision-table.md#derived-facts: the latest recent calcium, albumin-adjusted, in mmol/L.

The latest total or corrected calcium within ``calcium_result_window_days`` is used; at
the same time a laboratory's own corrected value wins. A reported corrected calcium
(LOINC 29265-6) is taken as is; a total calcium is adjusted with the albumin nearest in
time within ±``albumin_pairing_hours`` (NICE CKS formula). Without such an albumin the
measured value is used and the card says it is unadjusted: cancer patients often have
low albumin, so the true adjusted value is usually higher. Which calcium and which
albumin: :func:`calcium_selections`, the one declaration the snapshot reader runs too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal
from functools import lru_cache
from typing import Literal

from service.clinical.patientdata import Measurement
from service.clinical.policy import ClinicalPolicy
from service.clinical.rules.base import Evidence
from service.clinical.rules.gaps import unknown_reasons
from service.clinical.selection import Selection, choose_all
from service.clinical.snapshot import PatientSnapshot
from service.clinical.units import ALBUMIN, CALCIUM, adjusted_calcium, albumin_g_per_l, calcium_mmol_per_l
from service.fastinit import fast_init

__all__ = [
    "CALCIUM_VALUESETS",
    "CalciumFact",
    "CalciumReading",
    "calcium_selections",
    "derive_calcium",
    "format_mmol",
]

_CORRECTED = "calcium-corrected"
CALCIUM_VALUESETS = ("calcium-total-mass", "calcium-total-molar", _CORRECTED)
_CALCIUM = "calcium"
_ALBUMIN = "albumin"
_HUNDREDTH = Decimal("0.01")
_IMPLAUSIBLE = Decimal(1000)


def format_mmol(value: Decimal) -> str:
    """Two decimals, truncated so the shown value never crosses a band edge (2.999 is "2.99").

    Implausible magnitudes (a unit error upstream) are shown in scientific notation.
    """
    if abs(value) >= _IMPLAUSIBLE:
        return f"{value:.2E} mmol/L"
    return f"{value.quantize(_HUNDREDTH, rounding=ROUND_DOWN)} mmol/L"


@fast_init
@dataclass(frozen=True, slots=True)
class CalciumReading:
    """The calcium value the hypercalcaemia bands are applied to."""

    mmol_per_l: Decimal
    method: Literal["reported", "adjusted", "unadjusted"]
    calcium: Measurement
    albumin: Measurement | None
    evidence: tuple[Evidence, ...]


@fast_init
@dataclass(frozen=True, slots=True)
class CalciumFact:
    reading: CalciumReading | None
    #: why no reading could be made although one might exist (unreadable labs, no code list)
    unknown: tuple[str, ...] = ()


@lru_cache(maxsize=32)
def calcium_selections(policy: ClinicalPolicy) -> tuple[Selection, Selection]:
    """Which calcium and which albumin CA_CORR reads (the reader validates and keeps only those)."""
    calcium = Selection(
        _CALCIUM,
        frozenset(CALCIUM_VALUESETS),
        "latest",
        within=timedelta(days=policy.calcium_result_window_days),
        measure=CALCIUM,
        preferred=frozenset({_CORRECTED}),
    )
    # A reported corrected calcium needs no albumin: none is read then.
    albumin = Selection(
        _ALBUMIN,
        frozenset({_ALBUMIN}),
        "nearest",
        measure=ALBUMIN,
        anchor=_CALCIUM,
        near=timedelta(hours=policy.albumin_pairing_hours),
        unless_anchor_in=frozenset({_CORRECTED}),
    )
    return calcium, albumin


def derive_calcium(snapshot: PatientSnapshot, policy: ClinicalPolicy) -> CalciumFact:
    chosen = choose_all(calcium_selections(policy), snapshot.measurements, snapshot.at)
    latest = chosen[_CALCIUM]
    if latest is None:
        return CalciumFact(None, unknown_reasons(snapshot, CALCIUM_VALUESETS, "calcium"))
    measured = calcium_mmol_per_l(latest.value, latest.unit or "")
    if measured is None:  # the selection admits known units only; kept for type safety
        return CalciumFact(None)
    if _CORRECTED in latest.groups:
        evidence: tuple[Evidence, ...] = (Evidence(latest, "corrected calcium (reported)", latest.shown),)
        return CalciumFact(CalciumReading(measured, "reported", latest, None, evidence))
    albumin = chosen[_ALBUMIN]
    albumin_g_l = albumin_g_per_l(albumin.value, albumin.unit or "") if albumin is not None else None
    if albumin is None or albumin_g_l is None:
        evidence = (Evidence(latest, "total calcium (not albumin-adjusted)", latest.shown),)
        return CalciumFact(CalciumReading(measured, "unadjusted", latest, None, evidence))
    adjusted = adjusted_calcium(measured, albumin_g_l)
    evidence = (
        Evidence(latest, "total calcium", f"{latest.shown} (adjusted {format_mmol(adjusted)})"),
        Evidence(albumin, "albumin", albumin.shown),
    )
    return CalciumFact(CalciumReading(adjusted, "adjusted", latest, albumin, evidence))
