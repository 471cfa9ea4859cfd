"""Where handover keeps its state: `.handover/` under the working directory.

`HANDOVER_HOME` moves it (tests use a temporary folder). Everything a run
writes (checklists, audit logs, Prefect's SQLite database, demo estate,
bundles) lives below it, so one folder holds a site's whole state.

That state describes a client's systems, so the folder and every contract
folder are 0700 whatever the umask: `handover_home` and `contract_dir` set
the mode each time they are called, which also tightens a folder made by an
older version (or by hand) with the umask's 0755.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from handover.errors import UsageError
from handover.state.atomic import PRIVATE_DIR_MODE, ensure_private_dir

#: A contract id as handover's state accepts it: it names the contract's folder, its
#: vault and its `vault:` references, so it must be a short lowercase slug.
CONTRACT_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


def handover_home() -> Path:
    """Return the state folder (0700), creating it on first use."""
    value = os.environ.get("HANDOVER_HOME", ".handover")
    if not value.strip():
        # An empty value would mean the working directory itself, then made 0700.
        raise UsageError("HANDOVER_HOME is set but empty: unset it or name a folder")
    return _private(Path(value).absolute())


#: Where the contracts' evidence folders live when not under the home: `file:///shared/folder`
#: (a folder every worker mounts at the same path) or `s3://bucket/prefix` (a mirror of each
#: worker's folder, `handover.state.evidence`).
EVIDENCE_URL_ENV = "HANDOVER_EVIDENCE_URL"


def contracts_home() -> Path:
    """The folder holding the contract folders (0700): the home's `contracts`, or a shared one.

    `HANDOVER_EVIDENCE_URL=file:///mnt/handover` puts them in that folder, so
    workers on several machines read and write one copy of each contract's
    evidence, and the erasure deletes the provider's working copies in the one
    place they are. An `s3://` URL leaves them here: each worker's folder is
    then its copy of the mirror.
    """
    shared = shared_contracts_folder()
    return _private(shared if shared is not None else handover_home() / "contracts")


def shared_contracts_folder() -> Path | None:
    """The folder a `file:` HANDOVER_EVIDENCE_URL names; None for any other or no URL."""
    value = os.environ.get(EVIDENCE_URL_ENV, "").strip()
    if not value.startswith("file:"):
        return None
    parts = urlsplit(value)
    if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
        raise UsageError(
            f"{EVIDENCE_URL_ENV}={value[:80]!r}: a shared folder is named file:///absolute/path"
        )
    return Path(unquote(parts.path))


def contract_dir(contract_id: str) -> Path:
    """Return the folder holding one contract's state (checklists, audit log, known_hosts)."""
    return _private(contracts_home() / contract_id)


def _private(folder: Path) -> Path:
    """`folder`, created if missing, with mode 0700 (tightened if it was wider)."""
    ensure_private_dir(folder)
    if folder.stat().st_mode & 0o777 != PRIVATE_DIR_MODE:
        try:
            os.chmod(folder, PRIVATE_DIR_MODE)
        except OSError as exc:  # another account's folder: say so rather than use it wide open
            raise UsageError(
                f"{folder}: handover's state must be private (mode 0700) and this folder "
                f"cannot be made so ({exc.strerror}); set HANDOVER_HOME to a folder you own"
            ) from exc
    return folder
