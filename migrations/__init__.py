"""Alembic migrations: one linear history that runs on PostgreSQL and SQLite."""
