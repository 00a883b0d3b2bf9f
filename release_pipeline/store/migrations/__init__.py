"""Alembic migrations shipped with the package and applied when a store is opened."""

# The newest revision. Opening a store compares this with the database and only
# imports Alembic when they differ, which keeps every command's start-up fast.
# tests/test_store.py checks it against Alembic's own idea of the head.
HEAD = "0004"
