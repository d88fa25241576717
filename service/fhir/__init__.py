"""Reading the patient's FHIR R4 data: prefetch first, the EHR's FHIR server second."""
