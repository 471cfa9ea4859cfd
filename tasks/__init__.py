"""Prefect tasks: thin wrappers over the handover core (retries, caching, artifacts, events)."""
