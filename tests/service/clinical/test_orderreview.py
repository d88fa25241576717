"""The draft-order review: the R1/R2 card replaces, raises or acknowledges a spine imaging draft."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from cds_hooks.models import Card
from service.clinical.draftorders import PRIORITY_ORDER
from service.clinical.engine import ClinicalScreener
from service.clinical.policy import ClinicalPolicy
from service.clinical.suggestions import OrderActions
from service.clinical.valuesets import ValueSetLibrary
from service.fhir.bundle import Entry
from service.fhir.integrity import PatientReferences
from service.fhir.record import PatientRecord
from tests.service.clinical.factories import (
    AT,
    BACKACHE,
    LOINC,
    MRI_LUMBAR,
    MRI_WHOLE_SPINE,
    NSCLC,
    PATIENT_ID,
    SNOMED,
    THORACIC_BACK_PAIN,
    URINARY_RETENTION,
    ago,
    concept,
    condition,
    custom_library,
    library,
    order,
)
from tests.service.clinical.test_properties import PROPERTY_SETTINGS

CT_WHOLE_SPINE = "429875006"
CHEST_XRAY = "30745-4"
#: A site's own orderable, standing for a spine X-ray in tests only: no standard code for one is verified.
LOCAL_XRAY = ("https://example.org/orderables", "XR-SPINE-2V")


def _screen(
    *resources: dict[str, Any],
    drafts: list[dict[str, Any]],
    selections: tuple[str, ...] | None = None,
    style: OrderActions = "spec",
    valuesets: ValueSetLibrary | None = None,
    references: PatientReferences | None = None,
) -> list[Card]:
    record = PatientRecord(
        patient_id=PATIENT_ID,
        resources={"patient": [{"resourceType": "Patient", "id": PATIENT_ID}], "conditions": list(resources)},
        draft_orders=drafts,
        selections=selections,
        references=references,
    )
    screener = ClinicalScreener(valuesets or library(), ClinicalPolicy(), order_actions=style)
    return list(screener.screen(record, AT).cards)


def _draft(
    code: str, system: str = LOINC, priority: str | None = "urgent", status: str = "draft", **extra: Any
) -> dict[str, Any]:
    resource = order(code, authored=None, status=status, system=system, **extra)
    if priority is not None:
        resource["priority"] = priority
    return resource


def _r1() -> tuple[dict[str, Any], dict[str, Any]]:
    return condition(NSCLC), condition(URINARY_RETENTION, onset=ago(1))


def _r2() -> tuple[dict[str, Any], dict[str, Any]]:
    return condition(NSCLC), condition(THORACIC_BACK_PAIN, onset=ago(10))


def _actions(card: Card) -> list[list[dict[str, Any]]]:
    return [[action.to_json() for action in suggestion.actions or ()] for suggestion in card.suggestions or ()]


def _types(card: Card) -> list[list[str]]:
    return [[action["type"] for action in actions] for actions in _actions(card)]


# -- replace --------------------------------------------------------------------------------


def test_r1_replaces_a_lumbar_mri_with_a_stat_whole_spine_mri_and_keeps_its_reasons() -> None:
    cancer, retention = _r1()
    reason_code = concept(URINARY_RETENTION, SNOMED, "Retention of urine")
    draft = _draft(
        MRI_LUMBAR,
        reasonCode=[reason_code],
        reasonReference=[
            {"reference": f"Condition/{retention['id']}"},
            {"reference": "Condition/someone-elses"},  # not in this patient's record
            {"reference": "https://other.example.org/fhir/Condition/x"},  # cannot be checked
        ],
    )
    (card,) = _screen(cancer, retention, drafts=[draft])
    assert card.selectionBehavior == "at-most-one"
    ((delete, create),) = _actions(card)
    assert delete == {
        "type": "delete",
        "description": delete["description"],
        "resourceId": f"ServiceRequest/{draft['id']}",
    }
    resource = create["resource"]
    assert create["type"] == "create" and resource["priority"] == "stat"
    assert {coding["code"] for coding in resource["code"]["coding"]} == {"30854-4", "411611000119102"}
    assert resource["reasonCode"] == [reason_code]
    references = [reason["reference"] for reason in resource["reasonReference"]]
    assert references[0] == f"Condition/{retention['id']}"
    assert set(references) == {f"Condition/{retention['id']}", f"Condition/{cancer['id']}"}
    assert "Replace the draft order" in (card.detail or "")


def test_r2_replaces_with_an_urgent_whole_spine_mri() -> None:
    (card,) = _screen(*_r2(), drafts=[_draft(MRI_LUMBAR, priority="routine")])
    ((_, create),) = _actions(card)
    assert create["resource"]["priority"] == "urgent"


def test_a_whole_spine_ct_is_replaced_when_no_mri_contraindication_is_recorded() -> None:
    draft = _draft(CT_WHOLE_SPINE, SNOMED, priority="stat")
    (card,) = _screen(*_r1(), drafts=[draft])
    assert _types(card) == [["delete", "create"]]
    assert "keep the CT" in (card.detail or "")


def test_every_wrong_spine_draft_is_replaced_by_one_order() -> None:
    drafts = [_draft(MRI_LUMBAR), _draft("36532-0")]
    (card,) = _screen(*_r1(), drafts=drafts)
    assert _types(card) == [["delete", "delete", "create"]]
    deleted = [action["resourceId"] for action in _actions(card)[0][:2]]
    assert deleted == [f"ServiceRequest/{draft['id']}" for draft in drafts]


def test_epic_rendering_has_one_action_per_suggestion_and_selection_any() -> None:
    draft = _draft(MRI_LUMBAR)
    (card,) = _screen(*_r1(), drafts=[draft], style="epic")
    assert card.selectionBehavior == "any"
    assert _types(card) == [["create"], ["delete"]]
    assert all(suggestion.isRecommended for suggestion in card.suggestions or ())
    assert _actions(card)[1][0]["resourceId"] == f"ServiceRequest/{draft['id']}"
    # Without a draft to fix, Epic still gets selectionBehavior any.
    (plain,) = _screen(*_r1(), drafts=[], style="epic")
    assert plain.selectionBehavior == "any" and _types(plain) == [["create"]]


def test_a_spine_xray_would_be_replaced_once_a_value_set_holds_its_code() -> None:
    draft = _draft(LOCAL_XRAY[1], LOCAL_XRAY[0])
    (card,) = _screen(*_r1(), drafts=[draft])
    assert _types(card) == [["create"]], "no verified X-ray code: the draft is not recognised"
    with_xray = custom_library(extra={"xray-spine": [LOCAL_XRAY]})
    (card,) = _screen(*_r1(), drafts=[draft], valuesets=with_xray)
    assert _types(card) == [["delete", "create"]]
    assert "plain X-rays cannot diagnose" in (card.detail or "")


def test_with_mri_contraindicated_the_ct_is_the_right_test_and_an_mri_is_replaced() -> None:
    # Pretend the MRI contraindication value set holds "cardiac pacemaker in situ" (441509002).
    contraindicated = custom_library(extra={"mri-contraindicated": [(SNOMED, "441509002")]})
    resources = (*_r1(), condition("441509002"))
    (card,) = _screen(*resources, drafts=[_draft(CT_WHOLE_SPINE, SNOMED, priority="stat")], valuesets=contraindicated)
    assert card.suggestions is None and "right test" in (card.detail or "")
    (card,) = _screen(*resources, drafts=[_draft(MRI_WHOLE_SPINE, priority="stat")], valuesets=contraindicated)
    assert _types(card) == [["delete", "create"]]
    assert _actions(card)[0][1]["resource"]["code"]["coding"][0]["code"] == CT_WHOLE_SPINE


# -- raise and acknowledge ------------------------------------------------------------------


def test_a_whole_spine_mri_at_a_lower_priority_is_raised_by_an_update_of_the_whole_draft() -> None:
    draft = _draft(MRI_WHOLE_SPINE, priority="urgent", note=[{"text": "please do under sedation"}])
    (card,) = _screen(*_r1(), drafts=[draft])
    ((update,),) = _actions(card)
    assert update["type"] == "update"
    assert update["resource"] == {**draft, "priority": "stat"}


def test_a_draft_without_priority_or_with_an_unknown_code_reads_as_routine() -> None:
    for priority in (None, "whenever"):
        (card,) = _screen(*_r2(), drafts=[_draft(MRI_WHOLE_SPINE, priority=priority)])
        assert _types(card) == [["update"]]
        assert "priority routine" in (card.detail or "")


def test_the_right_test_at_the_right_priority_or_above_is_acknowledged_without_a_second_order() -> None:
    for resources, priority in ((_r1(), "stat"), (_r2(), "urgent"), (_r2(), "asap"), (_r2(), "stat")):
        (card,) = _screen(*resources, drafts=[_draft(MRI_WHOLE_SPINE, priority=priority)])
        assert card.suggestions is None and card.selectionBehavior is None
        assert "is the right test at the right priority" in (card.detail or "")


def test_the_most_urgent_right_draft_speaks_for_the_session() -> None:
    drafts = [_draft(MRI_WHOLE_SPINE, priority="routine"), _draft(MRI_WHOLE_SPINE, priority="stat")]
    (card,) = _screen(*_r1(), drafts=drafts)
    assert card.suggestions is None


# -- what is left alone ---------------------------------------------------------------------


def test_without_a_spine_draft_the_card_suggests_todays_create() -> None:
    (card,) = _screen(*_r1(), drafts=[_draft(CHEST_XRAY)])
    assert _types(card) == [["create"]] and card.selectionBehavior == "at-most-one"


def test_order_select_reviews_only_the_selections() -> None:
    lumbar, lab = _draft(MRI_LUMBAR), _draft("17861-6", priority="routine")
    (card,) = _screen(*_r2(), drafts=[lumbar, lab], selections=(f"ServiceRequest/{lab['id']}",))
    assert _types(card) == [["create"]]
    (card,) = _screen(*_r2(), drafts=[lumbar, lab], selections=(f"ServiceRequest/{lumbar['id']}",))
    assert _types(card) == [["delete", "create"]]


def test_another_patients_draft_is_never_acted_on() -> None:
    draft = _draft(MRI_LUMBAR, subject={"reference": "Patient/someone-else"})
    (card,) = _screen(*_r1(), drafts=[draft])
    assert _types(card) == [["create"]]


def test_whose_draft_it_is_is_read_as_the_hook_reads_a_subject() -> None:
    # The same reading of references as every other resource (service.fhir.integrity): an
    # absolute reference on the request's FHIR server or the Patient entry's urn:uuid names
    # the patient; the same id on another server does not.
    server = "https://ehr.example/fhir"
    entry = Entry({"resourceType": "Patient", "id": PATIENT_ID}, "urn:uuid:5d1f0c0e-8a35-4d4e-9d0a-0c7c4a1f2b3c")
    references = PatientReferences(server, [entry])
    for subject, acted_on in (
        (f"{server}/Patient/{PATIENT_ID}", True),
        ("urn:uuid:5d1f0c0e-8a35-4d4e-9d0a-0c7c4a1f2b3c", True),
        (f"https://other.example/fhir/Patient/{PATIENT_ID}", False),
    ):
        draft = _draft(MRI_LUMBAR, subject={"reference": subject})
        (card,) = _screen(*_r1(), drafts=[draft], references=references)
        assert _types(card) == ([["delete", "create"]] if acted_on else [["create"]]), subject


def test_cards_without_an_order_are_not_reviewed() -> None:
    (card,) = _screen(condition(NSCLC), condition(BACKACHE, onset=ago(5)), drafts=[_draft(MRI_LUMBAR)])
    assert card.source.topic is not None and card.source.topic.code == "R2b"
    assert card.suggestions is None


# -- properties -----------------------------------------------------------------------------

_SPINE_CODES = st.sampled_from(
    [(LOINC, MRI_LUMBAR), (LOINC, MRI_WHOLE_SPINE), (SNOMED, CT_WHOLE_SPINE), (LOINC, CHEST_XRAY), (LOINC, "36531-2")]
)
_PRIORITIES = st.one_of(st.none(), st.sampled_from([*PRIORITY_ORDER, "soon"]))


@st.composite
def _drafts(draw: st.DrawFn) -> dict[str, Any]:
    system, code = draw(_SPINE_CODES)
    extra: dict[str, Any] = {}
    if draw(st.booleans()):
        extra["subject"] = {"reference": draw(st.sampled_from([f"Patient/{PATIENT_ID}", "Patient/other"]))}
    if draw(st.booleans()):
        extra["reasonReference"] = [{"reference": draw(st.sampled_from(["Condition/x", "Observation/y", "bad"]))}]
    return _draft(
        code, system, priority=draw(_PRIORITIES), status=draw(st.sampled_from(["draft", "active", "revoked"])), **extra
    )


@PROPERTY_SETTINGS
@given(
    st.lists(_drafts(), max_size=4),
    st.sampled_from(["R1", "R2"]),
    st.sampled_from(["spec", "epic"]),
    st.booleans(),
)
def test_review_invariants(drafts: list[dict[str, Any]], rule: str, style: OrderActions, select_first: bool) -> None:
    selections = (f"ServiceRequest/{drafts[0]['id']}",) if select_first and drafts else None
    (card,) = _screen(*(_r1() if rule == "R1" else _r2()), drafts=drafts, selections=selections, style=style)
    Card.model_validate(card.to_json())
    decided = {f"ServiceRequest/{draft['id']}" for draft in drafts}
    if selections is not None:
        decided &= set(selections)
    needed = "stat" if rule == "R1" else "urgent"
    actions = [action for group in _actions(card) for action in group]
    creates = [action for action in actions if action["type"] == "create"]
    # Never a second order beside a right one; a create always has the rule's priority.
    assert len(creates) <= 1
    assert all(action["resource"]["priority"] == needed for action in creates)
    for action in actions:
        if action["type"] == "delete":
            assert action["resourceId"] in decided and creates
        elif action["type"] == "update":
            assert f"ServiceRequest/{action['resource']['id']}" in decided
            assert action["resource"]["priority"] == needed
    for action in creates:
        # The new order cites only this patient's resources (an update returns the client's own draft as is).
        for reason in action["resource"].get("reasonReference", ()):
            assert reason["reference"].startswith("Condition/cond-")
    if style == "epic":
        assert all(len(group) == 1 for group in _actions(card))
