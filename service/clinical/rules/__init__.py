"""The rule registry: every rule of docs/clinical/decision-table.md#rules with its id, version and evidence.

``CARD_RULES`` are the rules that propose a card, in precedence order
(docs/clinical/decision-table.md#precedence-and-suppression); the
modifiers R3 (MRI contraindicated), R8 (spinal line on the NG12 card) and R9 (recent
imaging) change other rules' cards and are applied by the engine in that order.
``RULES`` lists every rule in table order: the audit records one outcome per entry, and
the PlanDefinitions are generated from it.
"""

from __future__ import annotations

from collections.abc import Callable

from service.clinical.rules.base import Citation, Evidence, Fact, OrderPlan, Plan, RuleSpec, Verdict
from service.clinical.rules.calcium import (
    R4A,
    R4B,
    R4C,
    hypercalcaemia_mild,
    hypercalcaemia_moderate,
    hypercalcaemia_severe,
)
from service.clinical.rules.cord_no_cancer import R7, cord_compression_without_cancer
from service.clinical.rules.facts import Facts, Given, derive_facts
from service.clinical.rules.mscc import (
    R1,
    R2,
    R2B,
    R3,
    back_pain_without_features,
    mscc_suspected,
    spinal_metastases_suspected,
)
from service.clinical.rules.ng12 import R6A, R6B, R6C, R8, chest_xray_consider, chest_xray_urgent, haemoptysis_referral
from service.clinical.rules.pancoast import R5, pancoast_plexopathy
from service.clinical.rules.suppression import R9

__all__ = [
    "CARD_RULES",
    "RULES",
    "RULES_BY_ID",
    "Citation",
    "Evaluator",
    "Evidence",
    "Fact",
    "Facts",
    "Given",
    "OrderPlan",
    "Plan",
    "RuleSpec",
    "Verdict",
    "derive_facts",
]

Evaluator = Callable[[Given], Verdict]

#: Card-proposing rules, highest precedence first (R1, R7, R4a, R2, R5, R4b,
#: R6a > R6b > R6c, R4c, R2b).
CARD_RULES: tuple[tuple[RuleSpec, Evaluator], ...] = (
    (R1, mscc_suspected),
    (R7, cord_compression_without_cancer),
    (R4A, hypercalcaemia_severe),
    (R2, spinal_metastases_suspected),
    (R5, pancoast_plexopathy),
    (R4B, hypercalcaemia_moderate),
    (R6A, haemoptysis_referral),
    (R6B, chest_xray_urgent),
    (R6C, chest_xray_consider),
    (R4C, hypercalcaemia_mild),
    (R2B, back_pain_without_features),
)
#: Every rule in the order of the decision table.
RULES: tuple[RuleSpec, ...] = (R1, R2, R2B, R3, R4A, R4B, R4C, R5, R6A, R6B, R6C, R7, R8, R9)
RULES_BY_ID: dict[str, RuleSpec] = {rule.id: rule for rule in RULES}
