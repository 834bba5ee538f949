"""Pydantic request and response models of the HTTP API (the public contract)."""
