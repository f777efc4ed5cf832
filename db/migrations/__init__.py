"""Alembic migrations of the registry schema (db/migrations, shipped as ivr.migrations)."""
