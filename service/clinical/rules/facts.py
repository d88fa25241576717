"""The derived facts of docs/clinical/decision-table.md#derived-facts, computed once per hook call.

Each fact is three-valued (:class:`~service.clinical.rules.base.Fact`): true with the
evidence that made it so; false; or unknown when nothing made it true *and* the data
that could have was unavailable: a prefetch key that could not be read, or a concept
group whose every value set is absent. A value set absent among others (e.g. no
verified code for "night pain") only means that feature is never seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from functools import lru_cache

from service.clinical.patientdata import Finding
from service.clinical.policy import ClinicalPolicy
from service.clinical.recordparts import RecordPart
from service.clinical.rules.base import Evidence, Fact
from service.clinical.rules.calcium_reading import CalciumFact, calcium_selections, derive_calcium
from service.clinical.rules.gaps import unknown_reasons, unread_parts
from service.clinical.selection import Selection, choose, choose_all
from service.clinical.snapshot import PatientSnapshot
from service.clinical.units import BODY_WEIGHT, body_weight_kg
from service.fastinit import fast_init

__all__ = [
    "CANCER_ANY_GROUPS",
    "CANCER_LUNG_GROUPS",
    "NEURO_GROUPS",
    "NG12_SYMPTOMS",
    "PAIN_QUALITY_GROUPS",
    "SPINAL_PAIN_GROUPS",
    "Facts",
    "Given",
    "derive_facts",
    "measured_selections",
    "severe_pain_score",
    "weight_selections",
]

CANCER_LUNG_GROUPS = ("lung-cancer-primary", "lung-cancer-history")
#: cancer_scope "any": NG234 covers spinal metastases from every cancer
CANCER_ANY_GROUPS = (*CANCER_LUNG_GROUPS, "malignancy-any", "malignancy-history-any")
NEURO_GROUPS = ("mscc-neuro-signs", "radicular-pain")
SPINAL_PAIN_GROUPS = ("spinal-pain-cervical", "spinal-pain-thoracic", "spinal-pain-lumbar", "spinal-pain-unspecified")
#: CG75: "pain in the middle (thoracic) or upper (cervical) spine" is itself a feature
PAIN_SITE_GROUPS = ("spinal-pain-thoracic", "spinal-pain-cervical")
PAIN_QUALITY_GROUPS = (
    "pain-feature-night",
    "pain-feature-straining",
    "pain-feature-tenderness",
    "pain-feature-progressive",
)
NG12_SYMPTOMS = {
    "ng12-cough": "cough",
    "ng12-fatigue": "fatigue",
    "ng12-dyspnoea": "shortness of breath",
    "ng12-chest-pain": "chest pain",
    "ng12-weight-loss": "weight loss",
    "ng12-appetite-loss": "appetite loss",
}
_WEIGHT_LOSS = "ng12-weight-loss"
_WEIGHT_ROLE = "NG12 symptom: weight loss"
_PAIN_SCORE = "pain-severity"
_WEIGHT = "body-weight"
_LATEST_WEIGHT = "latest body weight"
_HEAVIEST_WEIGHT = "heaviest body weight"
#: a fact that is false and could not have been unknown: shared, as most facts are that
_FALSE = Fact(False)
#: NG12 gives no age other than 40 for the lung recommendations (1.1.1-1.1.3)
NG12_MIN_AGE = 40


@fast_init
@dataclass(frozen=True, slots=True)
class Facts:
    """The derived facts under the policy's windows, named as in docs/clinical/decision-table.md#derived-facts.

    Each attribute is the table's fact in lower case (``lung_ca`` is ``LUNG_CA``), except
    ``age_40`` (``AGE`` of at least 40); a test keeps the two in step.
    """

    #: any cancer when the policy's cancer_scope is "any"
    lung_ca: Fact
    spine_mets_known: Fact
    cord_comp_dx: Fact
    neuro: Fact
    spinal_pain: Fact
    pain_feature: Fact
    #: a coded Pancoast tumour or an upper-lobe lung cancer; R5 also needs PANCOAST_SIGNS
    pancoast: Fact
    pancoast_signs: Fact
    ca_corr: CalciumFact
    hypercalcaemia_dx: Fact
    mri_contraindicated: Fact
    ever_smoked: Fact
    haemoptysis: Fact
    #: one fact per NG12 1.1.2 symptom, keyed by value-set id: NG12_SX counts the true ones
    ng12_sx: dict[str, Fact]
    #: an NG12 1.1.3 finding (R6c)
    ng12_consider: Fact
    age_40: Fact


@fast_init
@dataclass(frozen=True, slots=True)
class Given:
    """A rule's whole input: the snapshot, the team's policy, the derived facts."""

    snapshot: PatientSnapshot
    policy: ClinicalPolicy
    facts: Facts


# -- the measured facts' results, declared once (service.clinical.selection) -------------


# One policy serves every hook call: each declaration is built once per policy.
@lru_cache(maxsize=32)
def severe_pain_score(policy: ClinicalPolicy) -> Selection:
    """PAIN_FEATURE's severe pain score: the latest 0-10 score at or above the policy's threshold in the pain window.

    One such score makes the fact true, and is its evidence.
    """
    return Selection(
        "severe pain score",
        frozenset({_PAIN_SCORE}),
        "latest",
        within=timedelta(days=policy.spinal_pain_window_days),
        at_least=policy.severe_pain_score,
    )


@lru_cache(maxsize=32)
def weight_selections(policy: ClinicalPolicy) -> tuple[Selection, Selection]:
    """NG12_SX's measured weight loss: the latest body weight in the symptom window, and the heaviest before it."""
    window = timedelta(days=policy.ng12_symptom_window_days)
    latest = Selection(_LATEST_WEIGHT, frozenset({_WEIGHT}), "latest", within=window, measure=BODY_WEIGHT)
    heaviest = Selection(
        _HEAVIEST_WEIGHT, frozenset({_WEIGHT}), "largest", within=window, measure=BODY_WEIGHT, anchor=_LATEST_WEIGHT
    )
    return latest, heaviest


@lru_cache(maxsize=32)
def measured_selections(policy: ClinicalPolicy) -> tuple[Selection, ...]:
    """Every measured fact's results, anchors first: the snapshot reader keeps only what these choose."""
    return (severe_pain_score(policy), *calcium_selections(policy), *weight_selections(policy))


def _fact(snapshot: PatientSnapshot, groups: tuple[str, ...], found: Iterable[Finding], role: str) -> Fact:
    evidence = tuple(Evidence(finding, role) for finding in found)
    return Fact(True, evidence) if evidence else _unfound(snapshot, groups, role)


def _unfound(snapshot: PatientSnapshot, groups: tuple[str, ...], role: str) -> Fact:
    unknown = unknown_reasons(snapshot, groups, role)
    return Fact(None, (), unknown) if unknown else _FALSE


def derive_facts(snapshot: PatientSnapshot, policy: ClinicalPolicy) -> Facts:
    """All derived facts for ``snapshot`` under ``policy``'s windows."""
    at = snapshot.at

    def recent(days: int) -> Callable[[Finding], bool]:
        window = timedelta(days=days)
        return lambda item: item.is_current(at) and any(span.may_be_within(at, window) for span in item.times)

    def ongoing(days: int) -> Callable[[Finding], bool]:
        # SPINAL_PAIN: "active, or began within the window" (docs/clinical/decision-table.md#derived-facts).
        window = timedelta(days=days)
        return lambda item: (
            item.is_current(at) and (item.is_active or any(span.may_be_within(at, window) for span in item.times))
        )

    # Most groups have no finding in a record: those are decided without a look at the findings.
    present = snapshot.finding_groups

    def fact(groups: tuple[str, ...], role: str, keep: Callable[[Finding], bool] | None = None) -> Fact:
        if present.isdisjoint(groups):
            return _unfound(snapshot, groups, role)
        found = snapshot.findings_in(groups)
        return _fact(snapshot, groups, (item for item in found if keep is None or keep(item)), role)

    pain_window = policy.spinal_pain_window_days
    symptom_window = policy.ng12_symptom_window_days
    symptoms = {
        group: fact((group,), f"NG12 symptom: {name}", recent(symptom_window)) for group, name in NG12_SYMPTOMS.items()
    }
    symptoms[_WEIGHT_LOSS] = _weight_loss(snapshot, policy, symptoms[_WEIGHT_LOSS])
    return Facts(
        lung_ca=_lung_ca(snapshot, policy),
        spine_mets_known=_spine_mets_known(snapshot),
        cord_comp_dx=fact(("cord-compression",), "cord compression", recent(policy.cord_compression_window_days)),
        neuro=fact(NEURO_GROUPS, "neurological symptom or sign", recent(policy.neuro_window_days)),
        spinal_pain=fact(SPINAL_PAIN_GROUPS, "spinal pain", ongoing(pain_window)),
        pain_feature=_pain_feature(snapshot, policy, ongoing(pain_window)),
        pancoast=fact(("pancoast-tumour", "lung-cancer-upper-lobe"), "upper-lobe lung cancer"),
        pancoast_signs=fact(("pancoast-signs",), "Pancoast sign", recent(policy.pancoast_signs_window_days)),
        ca_corr=derive_calcium(snapshot, policy),
        hypercalcaemia_dx=fact(("hypercalcaemia",), "hypercalcaemia diagnosis", lambda item: item.is_current(at)),
        mri_contraindicated=fact(("mri-contraindicated",), "MRI contraindication", lambda item: item.is_current(at)),
        ever_smoked=_ever_smoked(snapshot),
        haemoptysis=fact(("haemoptysis",), "haemoptysis", recent(symptom_window)),
        ng12_sx=symptoms,
        ng12_consider=fact(("ng12-consider-cxr",), "NG12 1.1.3 finding", recent(symptom_window)),
        age_40=_age_at_least(snapshot, NG12_MIN_AGE),
    )


def _lung_ca(snapshot: PatientSnapshot, policy: ClinicalPolicy) -> Fact:
    # "Past or current diagnosis" (NICE): any clinical status counts, unlimited lookback.
    any_scope = policy.cancer_scope == "any"
    groups = CANCER_ANY_GROUPS if any_scope else CANCER_LUNG_GROUPS
    role = "cancer" if any_scope else "lung cancer"
    coded = snapshot.findings_in(groups)
    # mCODE PrimaryCancerCondition: a lung body site makes it a lung cancer whatever its code.
    profiled = tuple(
        item
        for item in snapshot.findings
        if item.mcode == "primary" and (any_scope or "lung" in item.body_sites) and item not in coded
    )
    return _fact(snapshot, groups, (*coded, *profiled), role)


def _spine_mets_known(snapshot: PatientSnapshot) -> Fact:
    coded = snapshot.findings_in(("secondary-bone-malignancy",))
    profiled = tuple(
        item
        for item in snapshot.findings
        if item.mcode == "secondary" and "vertebral-column" in item.body_sites and item not in coded
    )
    return _fact(snapshot, ("secondary-bone-malignancy",), (*coded, *profiled), "known bone or spinal metastasis")


def _pain_feature(snapshot: PatientSnapshot, policy: ClinicalPolicy, ongoing: Callable[[Finding], bool]) -> Fact:
    evidence = [
        Evidence(item, "thoracic or cervical spinal pain" if item.groups & set(PAIN_SITE_GROUPS) else "pain feature")
        for item in snapshot.findings_in((*PAIN_SITE_GROUPS, *PAIN_QUALITY_GROUPS))
        if ongoing(item)
    ]
    # "Severe" has no code: a 0-10 score at or above the policy threshold stands for it.
    score = choose(severe_pain_score(policy), snapshot.measurements, snapshot.at)
    if score is not None:
        evidence.append(Evidence(score, "severe pain score", f"{score.value}/10"))
    if evidence:
        return Fact(True, tuple(evidence))
    return _unfound(snapshot, (*PAIN_SITE_GROUPS, *PAIN_QUALITY_GROUPS, _PAIN_SCORE), "spinal pain features")


def _weight_loss(snapshot: PatientSnapshot, policy: ClinicalPolicy, coded: Fact) -> Fact:
    # NG12_SX: weight loss "coded, or ≥5 % body-weight fall [team policy]" (docs/clinical/team-policy.md#thresholds).
    days = policy.ng12_symptom_window_days
    chosen = choose_all(weight_selections(policy), snapshot.measurements, snapshot.at)
    latest, heaviest = chosen[_LATEST_WEIGHT], chosen[_HEAVIEST_WEIGHT]
    latest_kg = body_weight_kg(latest.value, latest.unit or "") if latest is not None else None
    heaviest_kg = body_weight_kg(heaviest.value, heaviest.unit or "") if heaviest is not None else None
    fall = (
        (heaviest_kg - latest_kg) / heaviest_kg * 100
        if latest_kg is not None and heaviest_kg is not None and heaviest_kg > 0
        else None
    )
    # The threshold as written in the settings: 5 is 5, not 5.0000000000000001.
    if latest is None or heaviest is None or fall is None or fall < Decimal(str(policy.weight_loss_percent)):
        # Unknown only when neither a code nor a weight could have been read.
        return coded if coded.truth is True else _unfound(snapshot, (_WEIGHT_LOSS, _WEIGHT), _WEIGHT_ROLE)
    return Fact(
        True,
        (
            *coded.evidence,
            Evidence(heaviest, _WEIGHT_ROLE, f"{heaviest.shown}, the heaviest in {days} days"),
            Evidence(latest, _WEIGHT_ROLE, f"{latest.shown}, {fall:.1f} % less"),
        ),
    )


def _ever_smoked(snapshot: PatientSnapshot) -> Fact:
    # NG12 does not define "ever smoked": any current- or ex-smoker status ever recorded.
    ever = tuple(
        Evidence(item, "ever smoked") for item in snapshot.smoking if "smoking-status-ever" in item.answer_groups
    )
    if ever:
        return Fact(True, ever)
    if any("smoking-status-never" in item.answer_groups for item in snapshot.smoking):
        return Fact(False)
    if snapshot.smoking:
        reason = "smoking status: recorded as unknown"
    elif RecordPart.LAB_RESULTS in unread_parts(snapshot):
        reason = f"smoking status: could not read {RecordPart.LAB_RESULTS.label}"
    else:
        reason = "smoking status: not recorded"
    return Fact(None, (), (reason,))


def _age_at_least(snapshot: PatientSnapshot, years: int) -> Fact:
    age = snapshot.age
    if age is None:
        return Fact(None, (), ("age: no date of birth",))
    truth = age.at_least(years)
    if truth is None:
        return Fact(None, (), (f"age: {age.display()} (partial date of birth)",))
    return Fact(truth)
