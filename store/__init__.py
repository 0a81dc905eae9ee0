"""Persistence: tables, repositories, the group-commit writer and Alembic migrations."""
