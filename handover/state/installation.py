"""The installation's own id: a random UUID kept in `$HANDOVER_HOME/installation-id`.

Contract ids are chosen by people, so two installations (or two test runs)
on one Prefect server may both hold a contract `acme-2026`. What an
installation publishes to the server and later reads back as proof (the
audit checkpoints) is labelled with this id as well, so one installation
never checks its log against another's checkpoint.

The id is made once, on first use, with O_EXCL: two processes starting at
the same moment both read the one that won the race. A team whose workers
share a state database (`HANDOVER_STATE_URL=postgresql://...`) is one
installation whatever each worker's home: its id is derived from the
database's address (never its password), so every worker labels and reads
the same checkpoints.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from handover.state.atomic import PRIVATE_FILE_MODE
from handover.state.home import handover_home
from handover.state.store import state_url

FILE_NAME = "installation-id"


def installation_id(home: Path | None = None) -> str:
    """This installation's id, created on first use (never changes afterwards)."""
    shared = state_url()
    if shared.kind == "postgresql" and shared.url:
        parts = urlsplit(shared.url)
        address = f"{parts.hostname or ''}:{parts.port or 5432}{parts.path}"
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"handover-state:postgresql://{address}"))
    path = (home or handover_home()) / FILE_NAME
    try:
        value = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        value = ""
    if value:
        return str(uuid.UUID(value))
    fresh = str(uuid.uuid4())
    tmp = path.with_name(f".{FILE_NAME}.{fresh}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        os.write(fd, (fresh + "\n").encode("ascii"))
        os.fsync(fd)  # linked below: it must never be seen empty after a crash
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process made it first: theirs wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return str(uuid.UUID(path.read_text(encoding="ascii").strip()))
