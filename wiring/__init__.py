"""The composition root: what every process builds from its settings."""
