"""Moving a contract's state from its folder into the team's database, chain unbroken.

A contract that started on one machine (the embedded default) and moves to
a team's workers (`HANDOVER_STATE_URL=postgresql://...`) must keep its one
audit chain: entries copied verbatim, so their hashes, and the checkpoints
signed over them, still hold; checklists at their versions. The copy is
made only from an intact trail and only into a database that holds nothing
of the contract, under both stores' locks, in one transaction: it is whole
or absent. The incident, on-site and visit journals follow (into empty
journals only), then the contract's known_hosts and vault (encrypted, its key staying
where it is) follow, each only where the database holds none yet (`Moved`
names those it kept). The folder is left as it was (the operator archives it). Stop
the contract's runs first: appends that bypass the checklists' lock (journals)
would otherwise land in the folder after the copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from handover.checklist.audit import AuditLog
from handover.checklist.local_store import LocalStore
from handover.errors import HandoverError
from handover.state.postgres import PostgresStore
from handover.state.shared_blob import SHARED_FILES
from handover.state.store import ABSENT, StateConflict


@dataclass(frozen=True)
class Moved:
    """What `move_to_database` copied."""

    contract: str
    entries: int
    checklists: list[str]
    checkpoints: int
    #: journals, known_hosts and vault.age copied; and those the database held already (kept)
    blobs: list[str] = field(default_factory=list)
    blobs_in_database: list[str] = field(default_factory=list)


def move_to_database(source: LocalStore, target: PostgresStore, contract: str) -> Moved:
    """Copy `contract`'s checklists, audit chain and checkpoints from `source` into `target`.

    Raises HandoverError, copying nothing, when the folder's chain does not
    verify (torn, edited, cut), when a checklist change waits in a pending
    record that cannot be completed, or when the database already holds
    the contract.
    """
    with source.lock(contract), target.lock(contract):
        names = source.checklist_names(contract)
        for name in names:
            source.recover(contract, name)  # a change a crash left half done, completed first
        log = AuditLog(source.paths(contract).audit_log)
        problems = log.verify()
        if problems:
            raise HandoverError(
                f"{log.path}: not copied, the chain does not verify ({len(problems)} problems, "
                f"first: {problems[0]}); run `handover audit --verify` and repair it first"
            )
        checklists = {}
        for name in names:
            data = source.read_checklist(contract, name)
            if data is not None:
                checklists[name] = data
        checkpoints_file = source.paths(contract).audit_checkpoints
        checkpoints = (
            [line for line in checkpoints_file.read_bytes().splitlines() if line.strip()]
            if checkpoints_file.exists()
            else []
        )
        entries = target.adopt(
            contract, (line for _n, line in log.lines()), checklists, checkpoints
        )
        copied: list[str] = []
        kept: list[str] = []
        for journal in ("incidents.jsonl", "onsite.jsonl", "visits.jsonl"):
            moved = _move_journal(source, target, contract, journal)
            if moved is not None:
                (copied if moved else kept).append(journal)
        for name in sorted(SHARED_FILES):
            data = source.read_blob(contract, name)
            if data is None:
                continue
            try:
                target.write_blob_if(contract, name, data, ABSENT)
                copied.append(name)
            except StateConflict:
                kept.append(name)
    return Moved(contract, entries, sorted(checklists), len(checkpoints), copied, kept)


def _move_journal(
    source: LocalStore, target: PostgresStore, contract: str, name: str
) -> bool | None:
    """Copy the folder's journal `name` into the database's if that one is empty (True).

    False when the database's holds records already (kept, nothing copied),
    None when the folder has no such journal.
    """
    path = source.paths(contract).root / name
    if not path.exists():
        return None
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    if not lines:
        return None
    empty: list[bool] = []

    def decide(data: bytes) -> list[bytes]:
        empty[:] = [not data.strip()]
        return lines if empty[0] else []

    target.journal(contract, name).append_decided(decide)
    return empty[0]
