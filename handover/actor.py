"""Who is acting: the name that audit entries, access records, erasure reports and rotations carry.

One function, so that the checklist's audit log, the access evidence, the
erasure certificate and the vault history name the same person the same
way. `HANDOVER_ACTOR` names the operator explicitly (a Prefect worker runs
under a service account, which says little to an auditor); otherwise it is
`user@host` of the process.
"""

from __future__ import annotations

import getpass
import os
import socket


def actor() -> str:
    """`HANDOVER_ACTOR`, else `user@host` (`unknown@host` when the user has no name)."""
    configured = os.environ.get("HANDOVER_ACTOR")
    if configured:
        return configured
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no LOGNAME/USER and no passwd entry (bare containers)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
