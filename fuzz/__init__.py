"""Property-based fuzzing of the live API with schemathesis (`python -m fuzz.run`)."""
