"""The first line of every phase flow: a deployment run may only use a playbook in the folders.

Runs started from a deployment (the Prefect UI's run form, the API,
a schedule) take `playbook_path` from whoever started them; that playbook
then decides what runs as the operator. So when this flow run belongs to a
deployment, the path must name a file inside the playbook folders
(`handover.contract.playbook_dirs`: HANDOVER_PLAYBOOK_DIRS, else
`playbooks/` under the working directory), checked before the playbook is
read or anything else happens. `handover run` and the demo, which start
flows in the operator's own process with the operator's own arguments, are
not deployment runs and are not limited.

The other parameters of the phase flows (`fresh`, `pin_host_keys`,
`notice_date`) name no file.
"""

from __future__ import annotations

import os
from pathlib import Path

from prefect.runtime import deployment

from handover.contract.playbook_dirs import (
    ENV_VAR,
    PlaybookOutsideFolders,
    check_playbook_path,
    playbook_dirs,
)


def guard_playbook_path(playbook_path: str) -> None:
    """Raise PlaybookOutsideFolders if this is a deployment run and the playbook is outside."""
    if deployment.id is None:
        return
    check_deployment_playbook(playbook_path)


def playbook_allowed(playbook_path: str) -> bool:
    """False for a deployment run whose playbook is outside the folders; never raises.

    For what reads the playbook before the flow's body runs (the run's name
    is computed first): it must not open a file the guard will refuse, which
    may be anything, a FIFO that blocks the open included.
    """
    if deployment.id is None:
        return True
    try:
        check_deployment_playbook(playbook_path)
    except PlaybookOutsideFolders:
        return False
    return True


def check_deployment_playbook(playbook_path: str) -> Path:
    """The resolved playbook if it is inside this process's playbook folders; else raise."""
    cwd = Path.cwd()
    return check_playbook_path(playbook_path, playbook_dirs(os.environ.get(ENV_VAR), cwd), cwd)
