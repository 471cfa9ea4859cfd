"""Where handover keeps its state: `.handover/` under the working directory.

`HANDOVER_HOME` moves it (tests use a temporary folder). Everything a run
writes (checklists, audit logs, Prefect's SQLite database, demo estate,
bundles) lives below it, so one folder holds a site's whole state.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

#: A contract id as handover's state accepts it: it names the contract's folder, its
#: vault and its `vault:` references, so it must be a short lowercase slug.
CONTRACT_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


def handover_home() -> Path:
    """Return the state folder, creating it on first use."""
    home = Path(os.environ.get("HANDOVER_HOME", ".handover")).absolute()
    home.mkdir(parents=True, exist_ok=True)
    return home


def contract_dir(contract_id: str) -> Path:
    """Return the folder holding one contract's state (checklists, audit log, known_hosts)."""
    path = handover_home() / "contracts" / contract_id
    path.mkdir(parents=True, exist_ok=True)
    return path
