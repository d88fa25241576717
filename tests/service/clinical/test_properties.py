"""Properties of the engine over generated records (hypothesis).

* adding a neurological sign never lowers the highest card indicator;
* without any cancer condition, R1 and R2 never fire;
* arbitrary or malformed entries never raise.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.clinical.policy import ClinicalPolicy
from service.clinical.rules import RULES
from service.clinical.rules.facts import CANCER_ANY_GROUPS
from tests.service.clinical.factories import (
    ALBUMIN,
    BACKACHE,
    BONE_METASTASIS,
    CALCIUM_MASS,
    CALCIUM_MOLAR,
    CHEST_XRAY,
    CORD_COMPRESSION,
    COUGH,
    DYSPNOEA,
    EX_SMOKER,
    HAEMOPTYSIS,
    ICD10CM,
    LOW_BACK_PAIN,
    MCODE_PRIMARY,
    MRI_LUMBAR,
    MRI_WHOLE_SPINE,
    NECK_PAIN,
    NEVER_SMOKED,
    NSCLC,
    PAIN_SCORE,
    PANCOAST,
    SHOULDER_PAIN,
    SMOKING_UNKNOWN,
    SNOMED,
    THORACIC_BACK_PAIN,
    THROMBOCYTOSIS,
    UPPER_LOBE_CANCER,
    URINARY_RETENTION,
    Resource,
    ago,
    cards_of,
    condition,
    library,
    observation,
    order,
    procedure,
    record,
    report,
    screen,
    smoking,
    study,
)

SEVERITY = {"info": 1, "warning": 2, "critical": 3}
PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CONDITION_CODES = [
    (NSCLC, SNOMED),
    (UPPER_LOBE_CANCER, SNOMED),
    (PANCOAST, SNOMED),
    ("Z85.118", ICD10CM),
    ("254837009", SNOMED),  # breast cancer
    (BONE_METASTASIS, SNOMED),
    (CORD_COMPRESSION, SNOMED),
    (BACKACHE, SNOMED),
    (LOW_BACK_PAIN, SNOMED),
    (THORACIC_BACK_PAIN, SNOMED),
    (NECK_PAIN, SNOMED),
    (SHOULDER_PAIN, SNOMED),
    (HAEMOPTYSIS, SNOMED),
    (COUGH, SNOMED),
    (DYSPNOEA, SNOMED),
    (THROMBOCYTOSIS, SNOMED),
    ("38341003", SNOMED),  # hypertension: in no value set
]
STATUSES = [None, "active", "recurrence", "remission", "resolved", "inactive"]
VERIFICATIONS = [None, "confirmed", "unconfirmed", "refuted", "entered-in-error"]

days = st.integers(min_value=0, max_value=200)


@st.composite
def times(draw: st.DrawFn) -> str | None:
    kind = draw(st.sampled_from(["instant", "date", "month", "none"]))
    stamp = ago(days=draw(days), hours=draw(st.integers(0, 23)))
    return {"instant": stamp, "date": stamp[:10], "month": stamp[:7], "none": None}[kind]


@st.composite
def conditions(draw: st.DrawFn) -> Resource:
    code, system = draw(st.sampled_from(CONDITION_CODES))
    resource = condition(
        code,
        system,
        onset=draw(times()),
        recorded=draw(times()),
        clinical=draw(st.sampled_from(STATUSES)),
        verification=draw(st.sampled_from(VERIFICATIONS)),
    )
    if draw(st.booleans()) and code in (NSCLC, "254837009"):
        resource["meta"] = {"profile": [MCODE_PRIMARY]}
    return resource


@st.composite
def labs(draw: st.DrawFn) -> Resource:
    code, unit, low, high = draw(
        st.sampled_from(
            [
                (CALCIUM_MOLAR, "mmol/L", 1.5, 4.5),
                (CALCIUM_MASS, "mg/dL", 6.0, 18.0),
                (ALBUMIN, "g/L", 15.0, 50.0),
                (ALBUMIN, "g/dL", 1.5, 5.0),
                (PAIN_SCORE, "{score}", 0.0, 10.0),
            ]
        )
    )
    value = draw(st.floats(min_value=low, max_value=high, allow_nan=False).map(lambda number: round(number, 2)))
    status = draw(st.sampled_from(["final", "amended", "preliminary"]))
    return observation(code, value=value, unit=unit, effective=ago(days=draw(st.integers(0, 20))), status=status)


@st.composite
def imaging(draw: st.DrawFn) -> Resource:
    code = draw(st.sampled_from([MRI_WHOLE_SPINE, MRI_LUMBAR, CHEST_XRAY]))
    when = ago(hours=draw(st.integers(0, 24 * 60)))
    kind = draw(st.sampled_from(["order", "study", "report", "procedure"]))
    if kind == "order":
        return order(code, authored=when, status=draw(st.sampled_from(["active", "completed", "draft", "revoked"])))
    if kind == "study":
        return study(code, started=when)
    return report(code, effective=when) if kind == "report" else procedure(code, performed=when)


resources = st.lists(
    st.one_of(
        conditions(),
        labs(),
        imaging(),
        st.sampled_from([EX_SMOKER, NEVER_SMOKED, SMOKING_UNKNOWN]).map(smoking),
    ),
    max_size=12,
)
birth_dates = st.sampled_from(["1950-01-01", "1986-06-01", "1986-06-02", "1986", "2000-05-05", None])
gaps = st.lists(st.sampled_from(["labs", "findings", "imagingOrders", "imagingStudies"]), unique=True, max_size=2)
policies = st.sampled_from([ClinicalPolicy(), ClinicalPolicy(cancer_scope="any")])


def highest(screening_cards: list[tuple[str, str]]) -> int:
    return max((SEVERITY[indicator] for _, indicator in screening_cards), default=0)


@PROPERTY_SETTINGS
@given(resources, birth_dates, gaps, policies, st.integers(0, 14), st.sampled_from([URINARY_RETENTION, "R26.2"]))
def test_adding_a_neurological_sign_never_lowers_the_highest_indicator(
    items: list[Resource], birth: str | None, missing: list[str], policy: ClinicalPolicy, onset: int, sign: str
) -> None:
    before = screen(record(*items, birth_date=birth, gaps=missing), policy=policy)
    system = SNOMED if sign == URINARY_RETENTION else ICD10CM
    after = screen(
        record(*items, condition(sign, system, onset=ago(onset)), birth_date=birth, gaps=missing), policy=policy
    )
    assert highest(cards_of(after)) >= highest(cards_of(before))


def is_cancer(resource: Resource) -> bool:
    meta = resource.get("meta") or {}
    if any("mcode-primary" in profile for profile in meta.get("profile", [])):
        return True
    codings = (resource.get("code") or {}).get("coding", [])
    return any(library().groups_of(coding["system"], coding["code"]) & set(CANCER_ANY_GROUPS) for coding in codings)


@PROPERTY_SETTINGS
@given(resources, birth_dates, gaps, policies)
def test_without_cancer_r1_and_r2_never_fire(
    items: list[Resource], birth: str | None, missing: list[str], policy: ClinicalPolicy
) -> None:
    kept = [item for item in items if not is_cancer(item)]
    result = screen(record(*kept, birth_date=birth, gaps=missing), policy=policy)
    shown = {rule_id for rule_id, _ in cards_of(result)}
    assert not shown & {"R1", "R2", "R2b"}
    fired = {item.rule_id for item in result.rules if item.result in ("fired", "suppressed")}
    assert not fired & {"R1", "R2", "R2b"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=10,
)
RESOURCE_TYPES = [
    "Condition",
    "Observation",
    "ServiceRequest",
    "ImagingStudy",
    "DiagnosticReport",
    "Procedure",
    "Patient",
]


@st.composite
def wild_labs(draw: st.DrawFn) -> Resource:
    """Lab results with any magnitude or sign (unit errors upstream happen)."""
    code, unit = draw(st.sampled_from([(CALCIUM_MOLAR, "mmol/L"), (CALCIUM_MASS, "mg/dL"), (ALBUMIN, "g/L")]))
    value = draw(st.floats(allow_nan=False, allow_infinity=False, width=32))
    return observation(code, value=value, unit=unit, effective=ago(days=1))


@st.composite
def malformed(draw: st.DrawFn) -> Any:
    """A valid-looking resource with random elements replaced, or random JSON."""
    base = draw(st.one_of(conditions(), labs(), imaging(), wild_labs()))
    if draw(st.booleans()):
        broken = copy.deepcopy(base)
        for key in draw(
            st.lists(st.sampled_from([*base.keys(), "onsetDateTime", "valueQuantity", "meta"]), max_size=3)
        ):
            broken[key] = draw(json_values)
        return broken
    return draw(
        st.one_of(
            json_values,
            st.fixed_dictionaries(
                {"resourceType": st.sampled_from(RESOURCE_TYPES)},
                optional={"code": json_values, "status": json_values, "effectiveDateTime": json_values},
            ),
        )
    )


@PROPERTY_SETTINGS
@given(st.lists(st.one_of(malformed(), wild_labs()), max_size=8), st.one_of(birth_dates, json_values), policies)
def test_arbitrary_entries_never_raise(items: list[Any], birth: Any, policy: ClinicalPolicy) -> None:
    patient_record = record(*items)
    patient_record.resources["patient"][0]["birthDate"] = birth
    patient_record.draft_orders = list(items[:2])
    result = screen(patient_record, policy=policy)
    assert len(result.rules) == len(RULES)
    assert all(isinstance(note, str) for note in result.notes)
