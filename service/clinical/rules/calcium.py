"""Hypercalcaemia: R4a (severe), R4b (moderate), R4c (mild), on albumin-adjusted calcium.

Evidence: NICE CKS Hypercalcaemia https://cks.nice.org.uk/topics/hypercalcaemia/ (bands
severe >= 3.5, moderate 3.0-3.5, mild above 2.6 and below 3.0 mmol/L; adjusted calcium
formula) and StatPearls Malignancy-Related Hypercalcemia https://pubmed.ncbi.nlm.nih.gov/29494030/
(docs/clinical/evidence.md#hypercalcaemia). The family is independent of the MSCC cards
(docs/clinical/decision-table.md#r4-hypercalcaemia) and applies to every patient:
hypercalcaemia needs action whatever its cause.
"""

from __future__ import annotations

from decimal import Decimal

from service.clinical.recordparts import RecordPart
from service.clinical.rules.base import Indicator, Plan, RuleSpec, Verdict
from service.clinical.rules.calcium_reading import CALCIUM_VALUESETS, CalciumReading, format_mmol
from service.clinical.rules.citations import CKS_HYPERCALCAEMIA, STATPEARLS_HYPERCALCAEMIA
from service.clinical.rules.common import RULES_DATE, RULES_VERSION, cancer_noun
from service.clinical.rules.facts import Given

__all__ = [
    "MILD_ABOVE",
    "MODERATE_FROM",
    "R4A",
    "R4B",
    "R4C",
    "SEVERE_FROM",
    "hypercalcaemia_mild",
    "hypercalcaemia_moderate",
    "hypercalcaemia_severe",
]

# Band edges in mmol/L (CKS, current wording). mg/dL results are converted, never
# compared against a second set of edges; the conversion (units.py) pairs 14 mg/dL
# with 3.5 mmol/L and 12 mg/dL with 3.0, as the decision table does.
SEVERE_FROM = Decimal("3.5")
MODERATE_FROM = Decimal("3.0")
MILD_ABOVE = Decimal("2.6")

_VALUESETS = (*CALCIUM_VALUESETS, "albumin", "hypercalcaemia")


def _spec(rule_id: str, title: str, description: str, logic: str, indicator: Indicator, rank: int) -> RuleSpec:
    return RuleSpec(
        id=rule_id,
        version=RULES_VERSION,
        date=RULES_DATE,
        title=title,
        description=description,
        logic=logic,
        strength="Moderate (CKS)",
        indicator=indicator,
        family="calcium",
        rank=rank,
        # one card per family: a higher band folds a lower one (bands are exclusive anyway)
        superseded_by=tuple(higher for higher in ("R4a", "R4b") if higher < rule_id),
        citations=(CKS_HYPERCALCAEMIA, STATPEARLS_HYPERCALCAEMIA),
        valuesets=_VALUESETS,
        reads=(RecordPart.LAB_RESULTS,),
    )


R4A = _spec(
    "R4a",
    "Hypercalcaemia - severe",
    "Albumin-adjusted calcium of 3.5 mmol/L or more (14 mg/dL) within the calcium result window.",
    "CA_CORR >= 3.5 mmol/L",
    "critical",
    30,
)
R4B = _spec(
    "R4b",
    "Hypercalcaemia - moderate",
    "Albumin-adjusted calcium from 3.0 to below 3.5 mmol/L (12-14 mg/dL) within the calcium result window.",
    "3.0 <= CA_CORR < 3.5 mmol/L",
    "warning",
    60,
)
R4C = _spec(
    "R4c",
    "Hypercalcaemia - mild",
    "Albumin-adjusted calcium above 2.6 and below 3.0 mmol/L within the calcium result window.",
    "2.6 < CA_CORR < 3.0 mmol/L",
    "info",
    80,
)

_FORMULA_CAVEAT = (
    "Adjusted calcium is approximate at extreme albumin, with paraproteinaemia or acidosis: measure ionised calcium "
    "then."
)
_UNADJUSTED_CAVEAT = (
    "No albumin within the pairing window: the measured calcium is shown; with low albumin (common in cancer) the "
    "adjusted value is higher."
)
_LABEL = {"reported": "Corrected calcium", "adjusted": "Adjusted calcium", "unadjusted": "Calcium (unadjusted)"}


def _band(
    given: Given,
    spec: RuleSpec,
    indicator: Indicator,
    low: Decimal,
    high: Decimal | None,
    *,
    low_inclusive: bool,
) -> Verdict:
    calcium = given.facts.ca_corr
    reading = calcium.reading
    if reading is None:
        return Verdict(spec, None if calcium.unknown else False)
    value = reading.mmol_per_l
    above = value >= low if low_inclusive else value > low
    below = high is None or value < high
    if not (above and below):
        return Verdict(spec, False)
    return Verdict(spec, True, _plan(given, spec, indicator, reading))


def _plan(given: Given, spec: RuleSpec, indicator: Indicator, reading: CalciumReading) -> Plan:
    label = f"{_LABEL[reading.method]} {format_mmol(reading.mmol_per_l)}"
    has_cancer = given.facts.lung_ca.truth is True
    noun = cancer_noun(given.policy)
    actions: dict[str, tuple[str, ...]] = {
        "R4a": (
            "Emergency assessment and admission: IV fluids and a bisphosphonate per local protocol (CKS).",
            *((f"With {noun}: liaise with acute oncology (hypercalcaemia of malignancy).",) if has_cancer else ()),
        ),
        "R4b": (
            "Same-day clinical review and specialist advice (CKS).",
            "With severe symptoms: treat as severe (emergency assessment).",
            *((f"With {noun}: liaise with acute oncology.",) if has_cancer else ()),
        ),
        "R4c": (
            "Repeat calcium with albumin and investigate the cause (routine).",
            "If symptomatic: same-day clinical review, as for moderate hypercalcaemia.",
            *((f"With {noun}: consider hypercalcaemia of malignancy.",) if has_cancer else ()),
        ),
    }
    summaries = {
        "R4a": f"{label} (severe): emergency assessment and admission today",
        "R4b": f"{label} (moderate): same-day clinical review and specialist advice",
        "R4c": f"{label} (mild): repeat with albumin and investigate the cause (routine)",
    }
    caveats = [_FORMULA_CAVEAT] if reading.method == "adjusted" else []
    if reading.method == "unadjusted":
        caveats.append(_UNADJUSTED_CAVEAT)
    return Plan(
        rule=spec,
        summary=summaries[spec.id],
        indicator=indicator,
        actions=actions[spec.id],
        evidence=(*reading.evidence, *given.facts.hypercalcaemia_dx.evidence, *given.facts.lung_ca.evidence),
        caveats=tuple(caveats),
    )


def hypercalcaemia_severe(given: Given) -> Verdict:
    """R4a - NICE CKS Hypercalcaemia (severe, >= 3.5 mmol/L): https://cks.nice.org.uk/topics/hypercalcaemia/"""
    return _band(given, R4A, "critical", SEVERE_FROM, None, low_inclusive=True)


def hypercalcaemia_moderate(given: Given) -> Verdict:
    """R4b - NICE CKS Hypercalcaemia (moderate, 3.0 to < 3.5 mmol/L): https://cks.nice.org.uk/topics/hypercalcaemia/"""
    return _band(given, R4B, "warning", MODERATE_FROM, SEVERE_FROM, low_inclusive=True)


def hypercalcaemia_mild(given: Given) -> Verdict:
    """R4c - NICE CKS Hypercalcaemia (mild, > 2.6 and < 3.0 mmol/L): https://cks.nice.org.uk/topics/hypercalcaemia/"""
    return _band(given, R4C, "info", MILD_ABOVE, MODERATE_FROM, low_inclusive=False)
