"""Population screening: the hook's screener over every patient of a Bulk FHIR export."""
