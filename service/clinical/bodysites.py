"""Body-site classes for mCODE cancer conditions (``Condition.bodySite``).

mCODE's PrimaryCancerCondition and SecondaryCancerCondition carry the tumour site in
``bodySite`` (CancerBodyLocationVS, SNOMED body structures). Two classes matter here:
a secondary cancer in the vertebral column is a known spinal metastasis
(``SPINE_METS_KNOWN``, docs/clinical/code-lists.md#mcode-profiles), and a primary cancer of the lung is a lung
cancer whatever its (possibly generic) ``code``.

The codes are SNOMED CT body structures checked in docs/clinical/code-lists.md#concept-groups row 20
(vertebral column, vertebral body, thoracic/lumbar vertebra; the region structures are
"partly" verified, one source) and the mCODE example's 39607008 Lung structure
(docs/clinical/code-lists.md#mcode-profiles). They are structural knowledge of the mCODE profiles rather
than a clinical concept group, so they live here and not in a ValueSet.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["BodySiteClass", "body_site_class"]

BodySiteClass = Literal["vertebral-column", "lung"]

_SNOMED = "http://snomed.info/sct"
_CLASSES: dict[tuple[str, str], BodySiteClass] = {
    (_SNOMED, "421060004"): "vertebral-column",  # Structure of vertebral column
    (_SNOMED, "3572006"): "vertebral-column",  # Structure of body of vertebra
    (_SNOMED, "35769007"): "vertebral-column",  # Bone structure of thoracic vertebra
    (_SNOMED, "73903008"): "vertebral-column",  # Bone structure of lumbar vertebra
    (_SNOMED, "122495006"): "vertebral-column",  # Thoracic spine structure (partly verified)
    (_SNOMED, "122496007"): "vertebral-column",  # Lumbar spine structure (partly verified)
    (_SNOMED, "122494005"): "vertebral-column",  # Structure of cervical vertebral column (partly)
    (_SNOMED, "44300000"): "vertebral-column",  # Entire vertebral column (partly verified)
    (_SNOMED, "51282000"): "vertebral-column",  # Bone structure of spine (partly verified)
    (_SNOMED, "39607008"): "lung",  # Lung structure
}


def body_site_class(system: str, code: str) -> BodySiteClass | None:
    """The class of a bodySite coding, or ``None`` when it is neither spine nor lung."""
    return _CLASSES.get((system, code))
