"""The evidence the rules cite (docs/clinical/evidence.md#evidence-for-the-rules).

Recommendation numbers of NG234 come from secondary quotes (the BMJ summary by the NICE
authors, a clinical-audit standards document);
docs/clinical/evidence.md#nice-ng234-spinal-metastases-and-mscc marks them secondary and asks for
the exact wording to be checked on nice.org.uk before release.
"""

from __future__ import annotations

from service.clinical.rules.base import Citation

__all__ = [
    "ACP_2011",
    "ACR_LOW_BACK_PAIN",
    "ACR_MYELOPATHY",
    "ACR_PLEXOPATHY",
    "ASTRO_2024",
    "CG75",
    "CHRISTIE_MSCC",
    "CKS_HYPERCALCAEMIA",
    "NG12_1_1_1",
    "NG12_1_1_2",
    "NG12_1_1_3",
    "NG234_1_3_2",
    "NG234_1_5_2",
    "NG234_1_8_1",
    "NG234_BOX2",
    "NG234_IMAGING",
    "NG234_NO_CANCER",
    "QS56_ST2",
    "QS56_ST3",
    "QS56_ST4",
    "RADIOGRAPHICS_2008",
    "SCOTTISH_MSCC",
    "STATPEARLS_HYPERCALCAEMIA",
    "TEAM_POLICY",
]

_NG234 = "https://www.nice.org.uk/guidance/ng234/chapter/Recommendations"
_NG234_TEXT = (
    "National Institute for Health and Care Excellence. Spinal metastases and metastatic spinal cord "
    "compression. NICE guideline NG234, September 2023"
)
_NG12 = "https://www.nice.org.uk/guidance/ng12/chapter/Recommendations-organised-by-site-of-cancer"
_NG12_TEXT = "National Institute for Health and Care Excellence. Suspected cancer: recognition and referral. NG12, 2015"

NG234_1_3_2 = Citation(
    "NICE NG234 (2023) rec 1.3.2",
    f"{_NG234_TEXT}. Recommendation 1.3.2 and box 1: symptoms and signs of spinal cord compression in a person "
    "with a past or current cancer; contact the MSCC coordinator immediately.",
    _NG234,
)
NG234_1_5_2 = Citation(
    "NICE NG234 (2023) rec 1.5.2",
    f"{_NG234_TEXT}. Recommendation 1.5.2: MRI of the whole spine for suspected MSCC as soon as possible and "
    "always within 24 hours.",
    _NG234,
)
NG234_1_8_1 = Citation(
    "NICE NG234 (2023) rec 1.8.1",
    f"{_NG234_TEXT}. Recommendation 1.8.1: 16 mg oral dexamethasone (or equivalent parenteral dose) as soon as "
    "possible for neurological symptoms or signs of MSCC.",
    _NG234,
)
NG234_BOX2 = Citation(
    "NICE NG234 (2023) rec 1.3, box 2",
    f"{_NG234_TEXT}. Section 1.3, box 2: spinal pain suggesting spinal metastases in a person with a past or "
    "current cancer; seek advice through the MSCC coordinator within 24 hours.",
    _NG234,
)
NG234_IMAGING = Citation(
    "NICE NG234 (2023) rec 1.5",
    f"{_NG234_TEXT}. Section 1.5: MRI of the whole spine within 1 week for suspected spinal metastases without "
    "neurology; CT if MRI is contraindicated; no plain spine X-ray to diagnose or rule out metastases.",
    _NG234,
)
NG234_NO_CANCER = Citation(
    "NICE NG234 (2023) rec 1.3 (no known cancer)",
    f"{_NG234_TEXT}. Section 1.3: people without a past or current cancer whose symptoms suggest spinal "
    "metastases or cord compression (cord compression may be the first presentation of cancer).",
    _NG234,
)
QS56_ST2 = Citation(
    "NICE QS56 (2023) statement 2",
    "National Institute for Health and Care Excellence. Metastatic spinal cord compression in adults. Quality "
    "standard QS56, updated September 2023. Statement 2: MRI of the whole spine within 1 week for spinal pain "
    "suggestive of spinal metastases without neurological symptoms or signs.",
    "https://www.nice.org.uk/guidance/qs56",
)
QS56_ST3 = Citation(
    "NICE QS56 (2023) statement 3",
    "National Institute for Health and Care Excellence. Metastatic spinal cord compression in adults. Quality "
    "standard QS56, updated September 2023. Statement 3: MRI of the whole spine within 24 hours of suspected "
    "MSCC with neurological symptoms or signs.",
    "https://www.nice.org.uk/guidance/qs56",
)
QS56_ST4 = Citation(
    "NICE QS56 (2023) statement 4",
    "National Institute for Health and Care Excellence. Metastatic spinal cord compression in adults. Quality "
    "standard QS56, updated September 2023. Statement 4: investigations for suspected MSCC with neurological "
    "symptoms or signs are coordinated by an MSCC coordinator.",
    "https://www.nice.org.uk/guidance/qs56",
)
CHRISTIE_MSCC = Citation(
    "The Christie MSCC pathway (2023)",
    "The Christie NHS Foundation Trust. Identifying patients with suspected MSCC (April 2023): MRI of the whole "
    "spine within 24 hours; with a specific contraindication, CT of the whole spine with sagittal slices.",
    "https://www.christie.nhs.uk/patients-and-visitors/services/metastatic-spinal-cord-compression-mscc/"
    "information-about-mscc-for-healthcare-professionals/identifying-patients-with-suspected-mscc",
)
CG75 = Citation(
    "NICE CG75 (2008) key priorities",
    "National Institute for Health and Care Excellence. Metastatic spinal cord compression in adults: risk "
    "assessment, diagnosis and management. Clinical guideline CG75, 2008 (replaced by NG234): key priorities for "
    "implementation.",
    "https://www.nice.org.uk/guidance/cg75/chapter/Key-priorities-for-implementation",
)
SCOTTISH_MSCC = Citation(
    "Scottish Referral Guidelines for Suspected Cancer: MSCC",
    "Scottish Government. Scottish referral guidelines for suspected cancer: quick reference guide, metastatic "
    "spinal cord compression (frequent clinical review of non-specific spinal pain).",
    "https://www.gov.scot/publications/scottish-referral-guidelines-suspected-cancer-quick-reference-guide/pages/13/",
)
ACR_MYELOPATHY = Citation(
    "ACR Appropriateness Criteria Myelopathy (2021)",
    "Agarwal et al. ACR Appropriateness Criteria Myelopathy: 2021 update. J Am Coll Radiol 2021;18:S73. "
    "Variants 1-2: MRI of the spine is usually appropriate.",
)
ACR_LOW_BACK_PAIN = Citation(
    "ACR Appropriateness Criteria Low Back Pain (2021) variant 7",
    "Hutchins et al. ACR Appropriateness Criteria Low Back Pain: 2021 update. J Am Coll Radiol 2021;18:S361. "
    "Variant 7: low back pain with or without radiculopathy and suspicion of cancer, infection or "
    "immunosuppression; initial imaging.",
    "https://acsearch.acr.org/list/GetAppendix?PanelName=Neurologic&TopicId=141",
)
ACP_2011 = Citation(
    "ACP high-value care: imaging for low back pain (2011)",
    "Chou et al. Diagnostic imaging for low back pain: advice for high-value health care from the American "
    "College of Physicians. Ann Intern Med 2011;154:181.",
    "http://www.acponline.org/mobile/clinicalguidelines/bestpractice/imaging_low_back_pain_0211.html",
)
ASTRO_2024 = Citation(
    "ASTRO guideline: EBRT for symptomatic bone metastases (2024)",
    "Alcorn et al. External beam radiation therapy for palliation of symptomatic bone metastases: an ASTRO "
    "clinical practice guideline. Pract Radiat Oncol 2024 (RT combined with dexamethasone for cord compression).",
    "https://www.guidelinecentral.com/guideline/3802027/",
)
CKS_HYPERCALCAEMIA = Citation(
    "NICE CKS Hypercalcaemia",
    "National Institute for Health and Care Excellence. Clinical Knowledge Summaries: Hypercalcaemia. Adjusted "
    "calcium = measured calcium + 0.02 x (40 - albumin g/L); severity bands and urgency of referral.",
    "https://cks.nice.org.uk/topics/hypercalcaemia/",
)
STATPEARLS_HYPERCALCAEMIA = Citation(
    "StatPearls: Malignancy-Related Hypercalcemia",
    "StatPearls. Malignancy-related hypercalcemia (PMID 29494030): severity bands mild 10-12, moderate 12-14, "
    "severe above 14 mg/dL.",
    "https://pubmed.ncbi.nlm.nih.gov/29494030/",
)
ACR_PLEXOPATHY = Citation(
    "ACR Appropriateness Criteria Plexopathy (2021)",
    "Boulter et al. ACR Appropriateness Criteria Plexopathy: 2021 update. J Am Coll Radiol 2021;18:S423. "
    "Dedicated plexus MRI is the most appropriate initial imaging, including known malignancy.",
    "https://profiles.wustl.edu/en/publications/acr-appropriateness-criteria-plexopathy-2021-update",
)
RADIOGRAPHICS_2008 = Citation(
    "RadioGraphics 2008: imaging of superior sulcus NSCLC",
    "Imaging of non-small cell lung cancer of the superior sulcus, part 2. RadioGraphics "
    "2008;28:561. MR imaging is superior for the neural foramina, spinal cord and brachial plexus.",
    "https://pubs.rsna.org/doi/10.1148/rg.282075710",
)
NG12_1_1_1 = Citation(
    "NICE NG12 rec 1.1.1",
    f"{_NG12_TEXT}. Recommendation 1.1.1: suspected cancer pathway referral for lung cancer at age 40 and over "
    "with unexplained haemoptysis.",
    _NG12,
)
NG12_1_1_2 = Citation(
    "NICE NG12 rec 1.1.2",
    f"{_NG12_TEXT}. Recommendation 1.1.2: urgent direct-access chest X-ray at age 40 and over with 2 or more "
    "unexplained symptoms, or ever smoked and 1 or more (cough, fatigue, shortness of breath, chest pain, weight "
    "loss, appetite loss).",
    _NG12,
)
NG12_1_1_3 = Citation(
    "NICE NG12 rec 1.1.3",
    f"{_NG12_TEXT}. Recommendation 1.1.3: consider an urgent chest X-ray at age 40 and over with persistent or "
    "recurrent chest infection, finger clubbing, supraclavicular or persistent cervical lymphadenopathy, chest "
    "signs of lung cancer or pleural disease, or thrombocytosis.",
    _NG12,
)
TEAM_POLICY = Citation(
    "mscc-cds team policy (docs/clinical/decision-table.md#r9-recent-imaging)",
    "mscc-cds clinical safety case: suppression and rewording windows for recent imaging (R9). No guideline "
    "addresses them; every window is a configurable setting to be signed off by a clinician.",
)
