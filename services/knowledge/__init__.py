"""Assistants' knowledge: documents, their chunks and vectors, and retrieval from them."""
