"""Windows and thresholds of the screening rules that are settings, not code.

Every window and threshold marked *team policy* (docs/clinical/team-policy.md#team-policy-windows-and-thresholds)
lives here with its default, so that a hospital's clinical safety officer can tune it without a release.
Guideline numbers (age 40, calcium bands, NICE clocks) stay in the rules themselves.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CancerScope", "ClinicalPolicy"]

CancerScope = Literal["lung", "any"]


class ClinicalPolicy(BaseModel):
    """Tunable parts of rules R1–R9. Immutable: one policy serves every hook call."""

    model_config = ConfigDict(frozen=True)

    #: "lung" (default): a past or current lung cancer. "any": any primary malignancy,
    #: since NICE NG234 covers spinal metastases and MSCC from every cancer.
    cancer_scope: CancerScope = "lung"
    #: NEURO: a neurological sign counts when new within this window. Incontinence,
    #: weakness and gait codes are common and non-specific in older people; the window
    #: trades sensitivity for fewer false alarms (team policy; docs/clinical/evidence.md#where-the-evidence-is-weak).
    neuro_window_days: int = Field(default=14, ge=1)
    #: SPINAL_PAIN / PAIN_FEATURE: pain that is active or began within this window.
    spinal_pain_window_days: int = Field(default=90, ge=1)
    #: CORD_COMP_DX: a coded cord compression this recent still fires R1.
    cord_compression_window_days: int = Field(default=30, ge=1)
    #: "Severe" pain proxy: a 0–10 pain score (LOINC 72514-3) at or above this value.
    severe_pain_score: float = Field(default=7, ge=0, le=10)
    #: PANCOAST signs (Horner, shoulder/arm pain, plexopathy) within this window.
    pancoast_signs_window_days: int = Field(default=90, ge=1)
    #: R5 imaging time frame: no guideline gives one; one week is the team's proposal.
    pancoast_imaging_days: int = Field(default=7, ge=1)
    #: CA_CORR: only a calcium result this recent is acted upon.
    calcium_result_window_days: int = Field(default=7, ge=1)
    #: Albumin taken within this many hours of the calcium sample corrects it.
    albumin_pairing_hours: int = Field(default=48, ge=1)
    #: NG12_SX: symptoms recorded within this window count (NG12 gives no duration).
    ng12_symptom_window_days: int = Field(default=90, ge=1)
    #: NG12_SX weight loss, when not coded: the latest body weight in the symptom window is
    #: at least this many per cent below the heaviest recorded in the window before it.
    weight_loss_percent: float = Field(default=5, gt=0, lt=100)
    #: R9 for R1: an active whole-spine MRI order this recent rewords the critical card.
    r1_order_window_hours: int = Field(default=24, ge=1)
    #: R9 for R1: a completed whole-spine MRI after the neurological onset and this
    #: recent downgrades the card to "review the result".
    r1_study_window_hours: int = Field(default=72, ge=1)
    #: R9 for R2: suppress after a whole-spine MRI completed within this many days ...
    r2_study_window_days: int = Field(default=14, ge=1)
    #: ... or ordered (active) within this many days.
    r2_order_window_days: int = Field(default=7, ge=1)
    #: R9 for R6b: suppress after a chest X-ray or CT completed within this many days ...
    r6_study_window_days: int = Field(default=42, ge=1)
    #: ... or ordered within this many days.
    r6_order_window_days: int = Field(default=14, ge=1)
    #: A sign or symptom Observation with status "preliminary" (an unsigned examination)
    #: counts, and its card says it is preliminary: a missed MSCC is the worse error.
    #: false: only final, amended and corrected findings count. Lab results always need
    #: final, amended or corrected (docs/clinical/data-quality.md).
    preliminary_findings_count: bool = True
