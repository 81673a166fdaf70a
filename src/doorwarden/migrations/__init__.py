"""Alembic migrations, and the one place that imports every model (models.py)."""
