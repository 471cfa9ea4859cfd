"""Connectors to client systems: local disk, SSH hosts (paramiko), S3 (boto3).

A connector is a transport: it runs a command, reads or writes a small file,
streams a tree or a dump as tar. `base.py` holds the HostConnector protocol
every host transport implements (`local.py`, `ssh/`), `factory.py` picks one
for a playbook host; `s3/` serves buckets as sources, bundle targets and
backup stores. What to ask a host (its inventory, its keys) is the estate's
business (`handover.estate`).
"""
