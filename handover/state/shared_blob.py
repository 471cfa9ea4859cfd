"""A contract's files that workers share through the state store: known_hosts, vault, journals.

Callers name these files by their path (`ContractPaths.known_hosts`,
`ContractPaths.vault_file`) and read them as files (paramiko, age). With the
local folder as state store (the default) the file *is* the store's blob:
nothing changes, the callers' own `<name>.lock` locks keep it.

With `HANDOVER_STATE_URL=postgresql://...` the blob in the database is the
contract's copy and the file is this worker's copy of it: `pull` brings the
file to the database's bytes before it is read, and `update` changes the
blob by compare-and-set (`update_blob`: read, change, write if unchanged,
again on a lost race), then writes the file. A host key pinned or a
credential added on one worker is then what every worker reads next, and
two workers writing at once both keep their change.

The incident, on-site and visit journals (`handover.state.journal`) are
the store's journals of the same names in the same way: appended there
under the journal's lock, this worker's file rewritten from them before it
is read (`journal_copy`).

Only the contract's own files in the installation's home are shared: a
known_hosts the playbook names elsewhere (`perimeter.known_hosts`) is the
operator's file and stays one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from handover.errors import HandoverError
from handover.state.atomic import write_atomic
from handover.state.home import CONTRACT_ID_PATTERN, handover_home, shared_contracts_folder
from handover.state.store import (
    ABSENT,
    JOURNAL_NAMES,
    ContractStore,
    Journal,
    StateConflict,
    check_blob_name,
    state_url,
    update_blob,
)

if TYPE_CHECKING:
    from handover.state.postgres import PostgresStore

#: The files of a contract folder that are store blobs of the same name, and whether a
#: worker's copy the store holds none of is taken into the store (`SharedBlob.pull`).
SHARED_FILES = {"known_hosts": True, "vault.age": False}


@dataclass(frozen=True)
class SharedBlob:
    """One contract blob in a shared store, and this worker's copy of it at `path`."""

    store: ContractStore
    contract: str
    name: str
    path: Path

    def pull(self) -> bytes | None:
        """Make this worker's copy the store's blob; return the bytes (None: there is none).

        A copy here that the store holds none of was written before the store
        was shared, or survived the store's erasure. A known_hosts (public
        keys) is taken into the store, unless another worker's got there
        first (then the store's wins, as for any stale copy). A vault is
        refused in one line, nothing overwritten: adopting it could bring an
        erased vault back; `move_to_database` carries a contract's vault.
        """
        data = self.store.read_blob(self.contract, self.name)
        if data is None:
            local = self._local()
            if local is None:
                return None
            if not SHARED_FILES[self.name]:
                raise HandoverError(
                    f"{self.path}: this worker holds a {self.name} that the state store "
                    f"{self.store.where} has none of (from before the store was shared, or "
                    "erased from it): move the contract into the store (`handover state move "
                    "CONTRACT`), or remove this copy"
                )
            try:
                self.store.write_blob_if(self.contract, self.name, local, ABSENT)
                return local
            except StateConflict:
                data = self.store.read_blob(self.contract, self.name)
        self._mirror(data)
        return data

    def update(self, change: Callable[[bytes | None], bytes | None]) -> bytes | None:
        """Change the blob by compare-and-set (see `update_blob`), then this worker's copy."""
        self.pull()
        data = update_blob(self.store, self.contract, self.name, change)
        self._mirror(data)
        return data

    def _local(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None

    def _mirror(self, data: bytes | None) -> None:
        if data is not None and self._local() != data:
            write_atomic(self.path, data)


def shared_blob(path: Path) -> SharedBlob | None:
    """The shared blob `path` is this worker's copy of; None when the file is its own.

    None for the local folder store and for any file that is not a
    contract's own `known_hosts` or `vault.age` in the installation's home.
    """
    found = _shared_store(path, frozenset(SHARED_FILES))
    return None if found is None else SharedBlob(found[0], found[1], path.name, path)


def shared_journal(path: Path) -> Journal | None:
    """The store's journal `path` is this worker's copy of (incidents, on-site, visits), or None."""
    found = _shared_store(path, JOURNAL_NAMES)
    return None if found is None else found[0].journal(found[1], path.name)


def journal_copy(path: Path) -> Path:
    """`path`, rewritten from the shared store's journal first when it is a shared journal.

    A file here with records while the store's journal is empty was written
    before the store was shared: refused in one line rather than overwritten
    (its records are on this disk only; `move_to_database` carries them).
    """
    journal = shared_journal(path)
    if journal is not None:
        lines = journal.lines()
        data = b"".join(line + b"\n" for line in lines)
        try:
            local = path.read_bytes()
        except FileNotFoundError:
            local = None
        if not lines and local and local.strip():
            raise HandoverError(
                f"{path}: this worker's journal holds records that {journal.where} has none "
                "of (from before the store was shared): move the contract into the store first "
                "(`handover state move CONTRACT`)"
            )
        if lines and local != data:
            write_atomic(path, data)
    return path


def _shared_store(path: Path, names: frozenset[str]) -> tuple[ContractStore, str] | None:
    """The shared store and the contract whose own file `path` is, if it is one of `names`."""
    url = state_url()
    if url.kind != "postgresql" or url.url is None or path.name not in names:
        return None
    contract = path.parent.name
    roots = {(handover_home() / "contracts").absolute()}
    shared = shared_contracts_folder()
    if shared is not None:  # HANDOVER_EVIDENCE_URL=file:///...: the contract folders are there
        roots.add(shared.absolute())
    if path.parent.parent.absolute() not in roots or not CONTRACT_ID_PATTERN.match(contract):
        return None
    # Imported here: SQLAlchemy and the driver load only where a database is used.
    from handover.state.postgres import PostgresStore

    return PostgresStore(url.url), contract


def local_copy(path: Path) -> Path:
    """`path`, brought up to the shared store's blob first when it is a shared file."""
    shared = shared_blob(path)
    if shared is not None:
        shared.pull()
    return path


#: What a PostgreSQL state store keeps of a contract, as globs of paths relative to the
#: contract's folder (POSIX): the files a worker holds only as its copy of the store's
#: state, or not at all, or whose every worker's copy differs. A mirror of the evidence
#: (last writer wins, per file) must leave them out: it would put one worker's copy over
#: the state every worker appends to. The checklists and the audit log (rows), the
#: journals (incidents, on-site, visits, signed checkpoints), the blobs (known_hosts,
#: vault, alert ledger) and their lock files, the health samples (one journal a month;
#: `.in-store` is a worker's pre-store file once merged into the store).
STORE_KEPT_GLOBS: tuple[str, ...] = (
    "checklists/*.json",
    "checklists/*.json.pending",
    "audit.log",
    "audit-checkpoints.jsonl",
    "incidents.jsonl",
    "onsite.jsonl",
    "visits.jsonl",
    "known_hosts",
    "known_hosts.lock",
    "vault.age",
    "vault.age.lock",
    "operational/alerts-sent.json",
    "operational/alerts-sent.json.lock",
    "operational/health/samples-*.jsonl",
    "operational/health/samples-*.jsonl.in-store",
)


def shared_contract(path: Path, relpath: str) -> tuple[ContractStore, str] | None:
    """The shared store and contract whose own `relpath` (POSIX, under its folder) `path` is.

    For the operational state kept beside the evidence (`operational/health`,
    `operational/alerts-sent.json`): None for the local folder store, and
    for a path that is not that entry of a contract folder of the
    installation, as for `shared_blob`.
    """
    parts = PurePosixPath(relpath).parts
    if not parts or tuple(path.parts[-len(parts) :]) != parts:
        return None
    entry = path  # the contract folder's own entry `parts[0]`
    for _ in parts[1:]:
        entry = entry.parent
    return _shared_store(entry, frozenset({parts[0]}))


def contracts_with_blob(store: PostgresStore, name: str) -> list[str]:
    """The contracts of a PostgreSQL store holding a blob `name`, sorted.

    `ContractStore.contracts` names those with an audit chain; a blob can be
    written first (`handover schedules deploy` before any run), so the
    database is asked for the blob itself.
    """
    from sqlalchemy import select

    from handover.state.postgres import blobs_table

    check_blob_name(name)
    with store._errors("*"), store.engine.connect() as conn:
        rows = conn.execute(
            select(blobs_table.c.contract)
            .where(blobs_table.c.name == name)
            .order_by(blobs_table.c.contract)
        )
        return [str(row.contract) for row in rows]
