"""R9: recent imaging rewords, downgrades or suppresses cards (docs/clinical/decision-table.md#r9-recent-imaging).

No guideline speaks to this: every window is team policy (``ClinicalPolicy.r*``), and
only certain evidence withholds advice (:meth:`TimeSpan.surely_within`):

* R1 is never suppressed. A whole-spine MRI performed after the *latest* onset of every
  sign that fired R1, and within ``r1_study_window_hours``, downgrades it to info ("review
  the result"): a sign that began after the scan was not imaged by it. The scan time is when
  it was performed (the reader never dates a scan by a report's ``issued``). Else an active
  whole-spine MRI order within ``r1_order_window_hours`` rewords it ("confirm it is reported
  within 24 h; coordinator and dexamethasone still apply").
* R2 is suppressed by a whole-spine MRI done within ``r2_study_window_days`` or ordered
  within ``r2_order_window_days``; R6b by a chest X-ray or CT done within
  ``r6_study_window_days`` or ordered within ``r6_order_window_days``.
* Only whole-spine codes count (NICE wants the whole spine). A single-region spine MRI
  suppresses nothing; the spinal cards mention it.
* Only active orders count as "ordered" (MRI_SPINE_ORDERED: an active ServiceRequest): a draft,
  e.g. the order being selected or signed in this hook call, may never be signed, and
  withholding R2's "MSCC coordinator within 24 hours" for it would lose advice.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta

from service.clinical.patientdata import Finding, ImagingEvent
from service.clinical.recordparts import IMAGING_PARTS
from service.clinical.rules.base import Evidence, Plan, RuleSpec, Truth
from service.clinical.rules.citations import NG234_1_5_2, TEAM_POLICY
from service.clinical.rules.common import RULES_DATE, RULES_VERSION
from service.clinical.rules.facts import Given
from service.clinical.rules.gaps import unread_parts
from service.clinical.rules.mscc import R1_ACTIONS
from service.clinical.timing import TimeSpan

__all__ = ["R9", "WHOLE_SPINE_MRI", "RecentImaging", "apply_recent_imaging"]

#: The value set of the imaging NICE asks for: only it rewords or suppresses the spinal cards.
WHOLE_SPINE_MRI = "mri-spine-whole"
_CHEST = ("chest-imaging", "chest-xray")

R9 = RuleSpec(
    id="R9",
    version=RULES_VERSION,
    date=RULES_DATE,
    title="Recent imaging: rewording and suppression",
    description=(
        "R1 is never suppressed: reworded when a whole-spine MRI was ordered within 24 hours, downgraded to info "
        "when one was performed after the latest neurological onset within 72 hours. R2 is suppressed by a "
        "whole-spine MRI done within 14 days or ordered within 7; R6b by a chest X-ray or CT done within 42 days or "
        "ordered within 14. "
        "Single-region spine MRI suppresses nothing and is mentioned. Windows shown are the defaults; all are settings."
    ),
    logic="see docs/clinical/decision-table.md#r9-recent-imaging",
    strength="Weak (no guideline speaks to it)",
    indicator=None,
    family="imaging",
    rank=0,
    superseded_by=(),
    citations=(TEAM_POLICY, NG234_1_5_2),
    valuesets=(WHOLE_SPINE_MRI, "mri-spine-region", *_CHEST),
    reads=IMAGING_PARTS,
)


Timed = tuple[TimeSpan, ImagingEvent]


@dataclass(slots=True)
class RecentImaging:
    """What R9 did: its truth, and the rules it suppressed with the reason shown to users."""

    truth: Truth = False
    suppressed: dict[str, str] = field(default_factory=dict)


def _recent(events: tuple[ImagingEvent, ...], state: str, given: Given, window: timedelta) -> list[Timed]:
    """Events in ``state``, not drafts, that surely happened within ``window`` before the hook time."""
    at = given.snapshot.at
    return [
        (event.when, event)
        for event in events
        if event.state == state and not event.draft and event.when is not None and event.when.surely_within(at, window)
    ]


def _latest(events: list[Timed]) -> Timed:
    return max(events, key=lambda timed: timed[0].start)


def apply_recent_imaging(plans: dict[str, Plan], given: Given) -> RecentImaging:
    """Apply R9 to ``plans`` in place (reword, downgrade, delete) and report what was done."""
    result = RecentImaging()
    targets = {"R1", "R2", "R6b"} & plans.keys()
    snapshot, policy = given.snapshot, given.policy
    whole = snapshot.imaging_in((WHOLE_SPINE_MRI,))
    if "R1" in plans:
        result.truth = _r1(plans, given, whole)
    spine_done = _recent(whole, "done", given, timedelta(days=policy.r2_study_window_days))
    spine_ordered = _recent(whole, "ordered", given, timedelta(days=policy.r2_order_window_days))
    if "R2" in plans and (spine_done or spine_ordered):
        del plans["R2"]
        result.suppressed["R2"] = _why("R2", "Whole-spine MRI", spine_done, spine_ordered, given)
    chest = snapshot.imaging_in(_CHEST)
    chest_done = _recent(chest, "done", given, timedelta(days=policy.r6_study_window_days))
    chest_ordered = _recent(chest, "ordered", given, timedelta(days=policy.r6_order_window_days))
    if "R6b" in plans and (chest_done or chest_ordered):
        del plans["R6b"]
        result.suppressed["R6b"] = _why("R6b", "Chest imaging", chest_done, chest_ordered, given)
    mentioned = _mention_single_region(plans, given)
    if result.suppressed or mentioned or result.truth is True:
        result.truth = True
    elif targets and unread_parts(snapshot).intersection(IMAGING_PARTS):
        result.truth = None  # recent imaging could not be checked for a card it governs
    return result


def _why(rule_id: str, what: str, done: list[Timed], ordered: list[Timed], given: Given) -> str:
    when, event = _latest(done or ordered)
    verb = "done" if done else "requested"
    return (
        f"{what} {verb} {when.display(given.snapshot.zone)} ({event.concept.display}): {rule_id} not shown "
        "(recent imaging, R9)."
    )


def _onsets(given: Given) -> list[TimeSpan] | None:
    """When each sign that fired R1 began; ``None`` when one of them has no time."""
    facts = given.facts
    onsets = [
        evidence.item.first_time
        for evidence in (*facts.neuro.evidence, *facts.cord_comp_dx.evidence)
        if isinstance(evidence.item, Finding)
    ]
    return None if not onsets or None in onsets else [onset for onset in onsets if onset is not None]


def _r1(plans: dict[str, Plan], given: Given, whole: tuple[ImagingEvent, ...]) -> bool:
    policy, zone = given.policy, given.snapshot.zone
    # A scan images what had begun by then: it must surely follow every onset (the latest),
    # or a sign that began after it would lose its emergency card.
    onsets = _onsets(given)
    done = [
        timed
        for timed in _recent(whole, "done", given, timedelta(hours=policy.r1_study_window_hours))
        if onsets is not None and all(timed[0].surely_after(onset) for onset in onsets)
    ]
    plan = plans["R1"]
    if done:
        when, study = _latest(done)
        plans["R1"] = replace(
            plan,
            summary=f"Suspected MSCC: whole-spine MRI done {when.short(zone)} – review the result with the MSCC "
            "team now",
            indicator="info",
            actions=(
                "Review the whole-spine MRI result with the MSCC team now.",
                "If MSCC is confirmed: dexamethasone 16 mg if not yet given, and a definitive treatment plan "
                "without delay.",
            ),
            evidence=(*plan.evidence, Evidence(study, "whole-spine MRI done after the latest neurological onset")),
            also=(*plan.also, "Downgraded from critical: a whole-spine MRI was done after the latest onset (R9)."),
            order=None,
        )
        return True
    ordered = _recent(whole, "ordered", given, timedelta(hours=policy.r1_order_window_hours))
    if not ordered:
        return False
    when, order = _latest(ordered)
    # The summary keeps the two actions that do not wait for the scan ("dexamethasone /
    # coordinator still apply"): a reader of the summary alone must not take the order as enough.
    plans["R1"] = replace(
        plan,
        summary=f"Suspected MSCC: whole-spine MRI requested {when.short(zone)} – confirm reported within 24 h; "
        "MSCC coordinator now, dexamethasone 16 mg",
        # The order replaces R1's contact, MRI and dexamethasone actions with these two lines; the
        # advice that does not depend on the scan stays, by name.
        actions=(
            f"Whole-spine MRI already requested ({when.display(zone)}): confirm it is done and reported within "
            "24 hours of the suspicion (NG234 1.5.2).",
            "Contact the MSCC coordinator immediately and offer dexamethasone 16 mg: both still apply.",
            R1_ACTIONS.immobilise,
            R1_ACTIONS.ct_if_mri_contraindicated,
        ),
        evidence=(*plan.evidence, Evidence(order, "whole-spine MRI requested")),
        order=None,
    )
    return True


def _mention_single_region(plans: dict[str, Plan], given: Given) -> bool:
    at, policy, zone = given.snapshot.at, given.policy, given.snapshot.zone
    windows = {
        "done": timedelta(days=policy.r2_study_window_days),
        "ordered": timedelta(days=policy.r2_order_window_days),
    }
    lines = tuple(
        f"Whole spine recommended – single-region study on {event.when.display(zone)} ({event.concept.display})."
        for event in given.snapshot.imaging_in(("mri-spine-region",))
        if event.when is not None and event.when.may_be_within(at, windows[event.state])
    )
    shown = [rule_id for rule_id in ("R1", "R2", "R7") if rule_id in plans]
    if not lines:
        return False
    for rule_id in shown:
        plans[rule_id] = replace(plans[rule_id], also=(*plans[rule_id].also, *lines))
    return bool(shown)
