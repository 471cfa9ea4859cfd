"""The operational run: backups, incidents, SLA figures."""
