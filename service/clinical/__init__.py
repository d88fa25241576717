"""The clinical knowledge: value sets, the patient snapshot, the rules and their cards."""
