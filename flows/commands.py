"""Prefect commands: server, serve, demo, run."""
