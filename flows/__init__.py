"""Prefect flows: one per contract phase, plus the whole lifecycle."""
