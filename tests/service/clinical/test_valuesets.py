"""The committed value sets are valid, cited and keyed by system; the loader indexes and rejects."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from fhir.resources.R4B.valueset import ValueSet

from service.clinical.valuesets import DEFAULT_VALUESETS_DIR, KnowledgeError, ValueSetLibrary

SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
CODE_SOURCE = "https://fhir.mscc-cds.org/StructureDefinition/code-source"

# The ids the rules code against; each must be a committed file or documented as absent.
REQUIRED_IDS = frozenset(
    {
        "lung-cancer-primary", "lung-cancer-upper-lobe", "pancoast-tumour", "lung-cancer-history",
        "malignancy-any", "malignancy-history-any", "secondary-bone-malignancy", "cord-compression",
        "spinal-pain-cervical", "spinal-pain-thoracic", "spinal-pain-lumbar", "spinal-pain-unspecified",
        "pain-feature-night", "pain-feature-straining", "pain-feature-tenderness", "pain-feature-progressive",
        "radicular-pain", "mscc-neuro-signs", "pancoast-signs", "haemoptysis", "ng12-cough", "ng12-fatigue",
        "ng12-dyspnoea", "ng12-chest-pain", "ng12-weight-loss", "ng12-appetite-loss", "ng12-consider-cxr",
        "hypercalcaemia", "body-weight", "smoking-status-code", "smoking-pack-years", "smoking-status-ever",
        "smoking-status-never", "smoking-status-unknown", "pain-severity", "calcium-total-mass", "calcium-total-molar",
        "calcium-corrected", "albumin", "mri-spine-whole", "mri-spine-region", "ct-spine", "chest-imaging",
        "chest-xray", "mri-brachial-plexus", "mri-contraindicated", "xray-spine", "symptom-observation",
        "symptom-absent-observation", "finding-absent-value", "finding-negative-interpretation",
    }
)  # fmt: skip

FILES = sorted(DEFAULT_VALUESETS_DIR.glob("*.json"))


def _raw(path: Path) -> dict[str, Any]:
    data = orjson.loads(path.read_bytes())
    assert isinstance(data, dict)
    return data


def _concepts(path: Path) -> list[tuple[str, dict[str, Any]]]:
    return [
        (include["system"], concept) for include in _raw(path)["compose"]["include"] for concept in include["concept"]
    ]


def _absent_ids_in_readme() -> set[str]:
    text = (DEFAULT_VALUESETS_DIR / "README.md").read_text(encoding="utf-8")
    section = text.split("## Concept groups with no value set", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z0-9-]+)` \|", section, flags=re.MULTILINE))


@pytest.fixture(scope="module")
def library() -> ValueSetLibrary:
    return ValueSetLibrary.load()


def test_the_folder_holds_value_sets() -> None:
    assert len(FILES) >= 30


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_each_file_is_a_valid_r4b_valueset_with_our_metadata(path: Path) -> None:
    valueset = ValueSet.model_validate(_raw(path))
    assert valueset.id == path.stem
    assert valueset.url == f"https://fhir.mscc-cds.org/ValueSet/{path.stem}"
    assert valueset.status == "active"
    assert valueset.publisher == "mscc-cds"
    assert str(valueset.date) == "2026-11-24"
    assert valueset.version
    assert re.fullmatch(r"\d{4}\.\d+\.\d+", valueset.version)
    assert valueset.name == "".join(part.capitalize() for part in path.stem.split("-"))
    assert valueset.title
    assert valueset.description


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_every_concept_is_a_string_code_with_display_and_source(path: Path) -> None:
    includes = _raw(path)["compose"]["include"]
    systems = [include["system"] for include in includes]
    assert len(systems) == len(set(systems)), "one include per code system"
    assert set(systems) <= {SNOMED, ICD10CM, ICD10, LOINC, V3_INTERPRETATION}
    for _system, concept in _concepts(path):
        assert isinstance(concept["code"], str)
        assert concept["code"] == concept["code"].strip() != ""
        assert isinstance(concept.get("display"), str)
        assert concept["display"].strip()
        sources = [ext for ext in concept.get("extension", []) if ext.get("url") == CODE_SOURCE]
        assert len(sources) == 1, concept["code"]
        assert sources[0]["valueString"].strip()


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_codes_have_the_shape_of_their_system(path: Path) -> None:
    shapes = {
        SNOMED: r"[1-9]\d{5,17}",
        ICD10CM: r"[A-Z]\d[0-9A-Z](\.[0-9A-Z]{1,4})?",
        ICD10: r"[A-Z]\d\d(\.\d)?",
        LOINC: r"\d{1,7}-\d",
        V3_INTERPRETATION: r"[A-Z]{1,4}",
    }
    for system, concept in _concepts(path):
        assert re.fullmatch(shapes[system], concept["code"]), (system, concept["code"])


def test_every_required_id_is_committed_or_documented_absent(library: ValueSetLibrary) -> None:
    absent = _absent_ids_in_readme()
    assert absent, "README lists the absent concept groups"
    assert not absent & library.ids, "an id cannot be both committed and documented absent"
    assert REQUIRED_IDS <= library.ids | absent
    assert library.ids <= REQUIRED_IDS, "unexpected value set id"


def test_ids_are_unique_and_match_their_files(library: ValueSetLibrary) -> None:
    assert library.ids == {path.stem for path in FILES}
    assert len(FILES) == len(library.ids)


def test_m62_81_is_icd10cm_weakness_and_never_a_who_code(library: ValueSetLibrary) -> None:
    # WHO M62.81 means a shoulder-region muscle disorder: matching it would invent weakness.
    assert library.groups_of(ICD10, "M62.81") == frozenset()
    assert library.contains("mscc-neuro-signs", ICD10CM, "M62.81")
    assert library.display_of(ICD10CM, "M62.81") == "Muscle weakness (generalized)"


def test_icd_codes_are_keyed_by_system(library: ValueSetLibrary) -> None:
    assert library.contains("lung-cancer-upper-lobe", ICD10CM, "C34.11")
    assert not library.contains("lung-cancer-upper-lobe", ICD10, "C34.11")
    assert library.contains("lung-cancer-upper-lobe", ICD10, "C34.1")
    assert library.contains("cord-compression", ICD10, "G95.2")
    assert not library.contains("cord-compression", ICD10CM, "G95.2"), "a header in ICD-10-CM"
    assert library.groups_of(ICD10CM, "M54.19") == frozenset(), "ICD-10-CM has no M54.19"


def test_index_answers_every_group_in_one_lookup(library: ValueSetLibrary) -> None:
    assert library.groups_of(SNOMED, "254638002") == {"lung-cancer-primary", "pancoast-tumour", "malignancy-any"}
    assert library.groups_of(SNOMED, "269464000") == {
        "lung-cancer-primary",
        "lung-cancer-upper-lobe",
        "malignancy-any",
    }
    assert library.groups_of(ICD10CM, "C34.31") == {"lung-cancer-primary", "malignancy-any"}
    assert library.groups_of(LOINC, "36643-5") == {"chest-imaging", "chest-xray"}
    assert library.groups_of(SNOMED, "0") == frozenset()
    assert library.groups_of("http://example.org/other", "C34.31") == frozenset()


def test_membership_of_the_verified_anchor_codes(library: ValueSetLibrary) -> None:
    expected = {
        "lung-cancer-history": [(ICD10CM, "Z85.118"), (ICD10CM, "Z85.110"), (ICD10, "Z85.1"), (SNOMED, "415082004")],
        "secondary-bone-malignancy": [(SNOMED, "94222008"), (SNOMED, "94602001"), (ICD10CM, "C79.51")],
        "cord-compression": [(SNOMED, "71286001"), (ICD10CM, "G95.20"), (ICD10CM, "G83.4")],
        "spinal-pain-thoracic": [(SNOMED, "279038004"), (ICD10CM, "M54.6")],
        "spinal-pain-lumbar": [(ICD10CM, "M54.5"), (ICD10CM, "M54.50"), (SNOMED, "279039007")],
        "spinal-pain-unspecified": [(SNOMED, "161891005"), (ICD10CM, "M54.9")],
        "radicular-pain": [(ICD10CM, "M54.16"), (SNOMED, "128196005")],
        "mscc-neuro-signs": [(SNOMED, "267064002"), (ICD10CM, "R33.9"), (ICD10CM, "G82.22"), (ICD10, "R15")],
        "smoking-status-ever": [(SNOMED, "8517006"), (SNOMED, "449868002")],
        "smoking-status-never": [(SNOMED, "266919005")],
        "calcium-total-mass": [(LOINC, "17861-6"), (LOINC, "49765-1")],
        "calcium-total-molar": [(LOINC, "2000-8")],
        "mri-spine-whole": [(LOINC, "30854-4"), (SNOMED, "411611000119102")],
        "malignancy-any": [(SNOMED, "254837009"), (ICD10CM, "C50.911"), (ICD10, "C61")],
        "malignancy-history-any": [(ICD10CM, "Z85.3"), (ICD10, "Z85.3"), (ICD10CM, "Z85.118")],
    }
    for valueset_id, codings in expected.items():
        for system, code in codings:
            assert library.contains(valueset_id, system, code), (valueset_id, system, code)


def test_excluded_codes_are_in_no_lung_cancer_set(library: ValueSetLibrary) -> None:
    lung_sets = {"lung-cancer-primary", "lung-cancer-upper-lobe", "malignancy-any", "lung-cancer-history"}
    excluded = [
        (SNOMED, "162573006"),  # suspected lung cancer: a situation, not a diagnosis
        (SNOMED, "94391008"),  # secondary malignant neoplasm of lung
        (SNOMED, "285604008"),  # metastasis to lung of unknown primary
        (ICD10CM, "D02.20"),  # carcinoma in situ of bronchus and lung
        (ICD10CM, "D02.21"),
        (ICD10CM, "D02.22"),
        (ICD10CM, "C78.01"),  # secondary malignant neoplasm of right lung
        (ICD10, "C78.0"),
    ]
    for system, code in excluded:
        assert not library.groups_of(system, code) & lung_sets, (system, code)


def test_secondary_neoplasms_are_not_primary_malignancy(library: ValueSetLibrary) -> None:
    malignancy = library.get("malignancy-any")
    secondary = [code for system, code in malignancy.codes if system != SNOMED and code[:3] in {"C77", "C78", "C79"}]
    assert secondary == []
    assert not any(code.startswith("C7B") for _system, code in malignancy.codes)
    assert library.contains("secondary-bone-malignancy", ICD10CM, "C79.51")
    assert not library.contains("malignancy-any", ICD10CM, "C79.51")


def test_subsets_are_contained_in_their_parent(library: ValueSetLibrary) -> None:
    pairs = [
        ("lung-cancer-upper-lobe", "lung-cancer-primary"),
        ("pancoast-tumour", "lung-cancer-primary"),
        ("lung-cancer-primary", "malignancy-any"),
        ("chest-xray", "chest-imaging"),
    ]
    for child, parent in pairs:
        assert library.get(child).codes <= library.get(parent).codes, (child, parent)


def test_whole_spine_and_region_mri_do_not_overlap(library: ValueSetLibrary) -> None:
    # Only whole-spine studies satisfy NICE: a single-region code must never count as one.
    assert not library.get("mri-spine-whole").codes & library.get("mri-spine-region").codes


def test_get_returns_the_record(library: ValueSetLibrary) -> None:
    record = library.get("haemoptysis")
    assert record.id == "haemoptysis"
    assert record.url == "https://fhir.mscc-cds.org/ValueSet/haemoptysis"
    assert record.version == "2026.11.0"
    assert record.title == "Haemoptysis"
    assert record.codes == {(SNOMED, "66857006"), (ICD10CM, "R04.2"), (ICD10, "R04.2")}
    with pytest.raises(KeyError):
        library.get("pain-feature-night")


def test_absent_groups_have_no_members(library: ValueSetLibrary) -> None:
    assert not library.contains("pain-feature-night", SNOMED, "36163009")
    assert "pain-feature-night" not in library.ids
    assert library.codes_of("pain-feature-night") == frozenset()


def test_codes_of_a_loaded_value_set_are_its_members(library: ValueSetLibrary) -> None:
    assert library.codes_of("haemoptysis") == library.get("haemoptysis").codes


def test_display_of(library: ValueSetLibrary) -> None:
    assert library.display_of(ICD10, "M54.1") == "Radiculopathy"
    assert library.display_of(LOINC, "72514-3") == "Pain severity - 0-10 verbal numeric rating [Score] - Reported"
    assert library.display_of(SNOMED, "0") is None


# --------------------------------------------------------------------------- loader errors


def _valueset(valueset_id: str, include: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    concept = {"code": "1751-7", "display": "Albumin", "extension": [{"url": CODE_SOURCE, "valueString": "test"}]}
    return {
        "resourceType": "ValueSet",
        "id": valueset_id,
        "url": f"https://fhir.mscc-cds.org/ValueSet/{valueset_id}",
        "version": "1.0.0",
        "title": valueset_id,
        "status": "active",
        "compose": {"include": include if include is not None else [{"system": LOINC, "concept": [concept]}]},
    }


def _write(folder: Path, name: str, content: dict[str, Any] | bytes) -> None:
    data = content if isinstance(content, bytes) else orjson.dumps(content)
    (folder / f"{name}.json").write_bytes(data)


def test_a_small_folder_loads(tmp_path: Path) -> None:
    _write(tmp_path, "albumin", _valueset("albumin"))
    _write(tmp_path, "other", _valueset("other"))
    library = ValueSetLibrary.load(tmp_path)
    assert library.ids == {"albumin", "other"}
    assert library.groups_of(LOINC, "1751-7") == {"albumin", "other"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "not a ValueSet"),
        ({"resourceType": "Patient", "id": "broken"}, "not a ValueSet"),
        (_valueset("broken", [{"system": LOINC, "concept": [{"code": 17517}]}]), "invalid FHIR R4B ValueSet"),
        (
            _valueset("broken", [{"system": LOINC, "concept": [{"code": "1", "extension": [{"valueString": "x"}]}]}]),
            "invalid FHIR R4B ValueSet",
        ),
        (_valueset("broken", []), "compose.include is empty"),
        ({**_valueset("broken"), "compose": None}, "compose.include is empty"),
        (_valueset("broken", [{"system": LOINC}]), "lists no codes"),
        (_valueset("broken", [{"system": LOINC, "filter": [{"property": "x", "op": "=", "value": "y"}]}]), "no codes"),
        (_valueset("broken", [{"valueSet": ["https://example.org/ValueSet/x"]}]), "has no system"),
        (_valueset("broken", [{"system": LOINC, "concept": [{"code": " 1751-7"}]}]), "invalid FHIR R4B ValueSet"),
        (_valueset("broken", [{"system": LOINC, "concept": [{"code": "1"}, {"code": "1"}]}]), "duplicate code"),
        ({key: value for key, value in _valueset("broken").items() if key != "url"}, "ValueSet.url is required"),
        ({key: value for key, value in _valueset("broken").items() if key != "version"}, "version is required"),
        (_valueset("other-name"), "does not match the file name"),
    ],
)
def test_malformed_files_raise_knowledge_error(tmp_path: Path, content: dict[str, Any] | bytes, message: str) -> None:
    _write(tmp_path, "broken", content)
    with pytest.raises(KnowledgeError, match=re.escape(message)):
        ValueSetLibrary.load(tmp_path)


def test_duplicate_ids_raise(tmp_path: Path) -> None:
    _write(tmp_path, "a-first", _valueset("a-first"))
    _write(tmp_path, "b-copy", _valueset("a-first"))
    with pytest.raises(KnowledgeError, match="duplicate ValueSet id 'a-first'"):
        ValueSetLibrary.load(tmp_path)


def test_missing_or_empty_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeError, match="not found"):
        ValueSetLibrary.load(tmp_path / "absent")
    with pytest.raises(KnowledgeError, match="no value sets"):
        ValueSetLibrary.load(tmp_path)
