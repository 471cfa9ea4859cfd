"""Connectors to client systems: local disk, SSH hosts (paramiko), S3 (boto3).

`base.py` holds the HostConnector protocol every host transport implements.
The URL helpers below let `handover seal/verify` take `PATH`, `ssh://...` or
`s3://...` with one code path; each scheme's module builds its own objects.
"""
