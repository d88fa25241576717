"""One vocabulary: the facts of the decision table are the attributes of ``Facts``, and the reverse.

docs/clinical/decision-table.md#derived-facts names each fact (``LUNG_CA``) and, in its
last column, where the code holds it (``lung_ca``): the attribute is the fact's name in
lower case, or the column says how it maps (``age_40``: ``AGE`` ≥ 40; the imaging facts
are R9's).
"""

from __future__ import annotations

import dataclasses
import re

import service.clinical.rules.calcium_reading
import service.clinical.rules.facts
from service.clinical.rules.facts import Facts
from tests.markdown import REPO, table_rows

TABLE = REPO / "docs" / "clinical" / "decision-table.md"
_NAME = re.compile(r"`([A-Z][A-Z0-9_]*)`")
_CODE = re.compile(r"`([a-z][a-z0-9_]*)`")
FIELDS = {field.name for field in dataclasses.fields(Facts)}
#: facts whose attribute is not their name in lower case; the table says how they map
MAPPED = {"AGE": "age_40"}
#: facts the rules do not derive as an attribute of Facts: the table names the rule that reads them
ELSEWHERE = {"MRI_SPINE_DONE", "MRI_SPINE_ORDERED"}


def _rows() -> list[tuple[list[str], list[str], str]]:
    rows = table_rows(TABLE, "derived-facts")
    assert rows, "the Derived facts table is missing"
    return [(_NAME.findall(row[0]), _CODE.findall(row[-1]), row[-1]) for row in rows]


def test_every_fact_of_the_table_is_an_attribute_of_facts() -> None:
    for names, code, cell in _rows():
        assert names, cell
        for name in names:
            if name in ELSEWHERE:
                assert "R9" in cell, name
                continue
            attribute = MAPPED.get(name, name.lower())
            assert attribute in FIELDS, f"{name}: Facts has no attribute {attribute}"
            assert code and code[0] == attribute, f"{name}: the table's code column names {code}"


def test_every_attribute_of_facts_is_a_fact_of_the_table() -> None:
    named = {code[0] for _, code, _ in _rows() if code}
    assert named == FIELDS


def test_the_declarations_the_table_names_exist() -> None:
    # The measured facts' selections (which result each reads) are named beside the fact.
    modules = (service.clinical.rules.facts, service.clinical.rules.calcium_reading)
    declared = {name for _, code, _ in _rows() for name in code[1:]}
    assert declared == {"severe_pain_score", "calcium_selections", "weight_selections"}
    for name in declared:
        assert any(callable(getattr(module, name, None)) for module in modules), name
