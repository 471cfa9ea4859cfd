"""One interface for a contract's state, whichever machine a run lands on.

A contract's checklists, its audit chain and its small named blobs (vault,
known_hosts, schedules) are kept by a `ContractStore`. Two implementations:

- the local folder (`handover.checklist.local_store.LocalStore`), the embedded
  default: the files under `.handover/contracts/<id>/` exactly as before;
- PostgreSQL (`handover.state.postgres.PostgresStore`), for teams whose
  runs land on several workers: transactions and row locks keep one audit
  chain and one version of each checklist, whichever worker writes.

`HANDOVER_STATE_URL` chooses: unset or `file:` is the local folder
(`file:///some/folder` names the folder holding the contract folders);
`postgresql://user@host/db` is PostgreSQL. The password, if the URL holds
one, is never shown: prefer a `~/.pgpass` file or `PGPASSWORD`.

What the interface promises, whatever keeps the state:

- `commit_checklist` is a compare-and-set: the new state is written only if
  the stored version is the one the caller read (`StateConflict`
  otherwise), and it is written with its audit entries, all or nothing;
- audit entries are appended one after the other on a single chain per
  contract (`seq` 1, 2, 3..., each `prev` the previous `hash`), however
  many processes and machines append at once;
- `lock(contract)` serialises the read-change-commit of one contract
  across threads, processes and, for PostgreSQL, machines. A process that
  dies holding it releases it (an `flock` closes with the process, a
  PostgreSQL session with its connection).
- `write_blob_if` is a compare-and-set on a blob: it writes only if the blob
  is still the one the caller read (`read_blob_tagged` gives its tag, the
  SHA-256 of its bytes, `ABSENT` when there is none), `StateConflict`
  otherwise; `update_blob` builds the read-change-retry loop on it, so two
  workers adding to one vault or known_hosts never lose either change.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from handover.errors import HandoverError, UsageError

#: One audit entry still to append: event, actor, data.
Record = tuple[str, str, dict[str, Any]]

STATE_URL_ENV = "HANDOVER_STATE_URL"
#: The blobs a contract keeps beside its checklists (names the stores accept); the alert
#: ledger (`alerts-sent.json`) is one so that workers claim an alert by compare-and-set.
BLOB_NAMES = frozenset(
    {"vault.age", "known_hosts", "schedules.json", "evidence-index.json", "alerts-sent.json"}
)


#: The tag of a blob never written (`read_blob_tagged`, `write_blob_if`).
ABSENT = "absent"


def blob_tag(data: bytes | None) -> str:
    """A blob's tag: the SHA-256 of its bytes, `ABSENT` when there is none.

    A tag by content, not by write count: a write that leaves the bytes as
    they were changes nothing the caller could have lost.
    """
    return ABSENT if data is None else hashlib.sha256(data).hexdigest()


class StateConflict(HandoverError):
    """A checklist changed between the read and the write (another worker got there first)."""


class AuditChain(Protocol):
    """One contract's audit chain kept outside the log file (a database)."""

    @property
    def where(self) -> str:
        """How messages name the chain (no password)."""
        ...

    def append(self, records: Sequence[Record]) -> list[dict[str, Any]]:
        """Chain `records` on the head, in order, all or none; return the entries written."""
        ...

    def head(self) -> dict[str, Any] | None:
        """The last entry; None when the chain is empty."""
        ...

    def lines(self) -> Iterator[tuple[int, bytes]]:
        """(line number, entry's canonical JSON) in `seq` order, streamed."""
        ...

    def exists(self) -> bool:
        """True once the chain holds an entry."""
        ...


class Journal(Protocol):
    """An append-only list of lines of one contract (signed checkpoints...) outside its file."""

    @property
    def where(self) -> str:
        """How messages name the journal (no password)."""
        ...

    def append(self, line: bytes) -> None:
        """Add one line (without its newline), durably."""
        ...

    def lines(self) -> list[bytes]:
        """Every line, in the order they were appended."""
        ...

    def iter_lines(self) -> Iterator[bytes]:
        """Every line, in order, streamed (a long journal is never held whole)."""
        ...

    def append_decided(self, decide: Callable[[bytes], Sequence[bytes]]) -> None:
        """Read the journal, let `decide` return lines, append them: one change, writers queued.

        `decide` gets the journal as its file would hold it (lines, each
        ending in a newline); what it returns is appended only if no other
        writer appended meanwhile. An exception from `decide` appends nothing.
        """
        ...


#: The journals a store keeps (names the stores accept): the signed checkpoints, and the
#: incident, on-site and visit journals under their file names.
JOURNAL_NAMES = frozenset({"audit-checkpoints", "incidents.jsonl", "onsite.jsonl", "visits.jsonl"})
#: The health sample journals, one per UTC month (`health-samples-2026-11`): a pattern, not a
#: list, since a contract adds one each month; the month is checked so that a name never
#: carries anything else (no path games, one journal per month).
HEALTH_SAMPLES_JOURNAL = re.compile(r"health-samples-\d{4}-(0[1-9]|1[0-2])")


def check_journal_name(name: str) -> str:
    """`name` if it is a journal a store keeps (`JOURNAL_NAMES` or a month's health samples)."""
    if name in JOURNAL_NAMES or HEALTH_SAMPLES_JOURNAL.fullmatch(name):
        return name
    raise UsageError(
        f"state journal {name!r}: one of {', '.join(sorted(JOURNAL_NAMES))}, "
        "or health-samples-YYYY-MM"
    )


class ContractStore(Protocol):
    """Where contracts' checklists, audit chains and blobs are kept (see the module docstring)."""

    @property
    def where(self) -> str:
        """How messages name the store (a folder, or a URL without its password)."""
        ...

    def lock(self, contract: str) -> AbstractContextManager[None]:
        """Hold the contract's lock (across processes; not re-entrant: callers count depth)."""
        ...

    def contracts(self) -> list[str]:
        """The contracts the store holds state of, sorted."""
        ...

    def read_checklist(self, contract: str, phase: str) -> bytes | None:
        """The checklist's stored JSON, or None if it was never opened."""
        ...

    def checklist_names(self, contract: str) -> list[str]:
        """The names of the contract's stored checklists (phases and periods), sorted."""
        ...

    def commit_checklist(
        self,
        contract: str,
        phase: str,
        expected_version: int,
        state: bytes,
        records: Sequence[Record],
    ) -> list[dict[str, Any]]:
        """Write `state` if the stored version is `expected_version`, with its audit entries.

        `expected_version` is 0 for a checklist not yet stored. Raises
        StateConflict when another writer changed the checklist meanwhile;
        nothing is written then.
        """
        ...

    def pending(self, contract: str, phase: str) -> str | None:
        """The name of a change a crash left half done, if the store can have one."""
        ...

    def recover(self, contract: str, phase: str) -> None:
        """Complete a change a crash left half done (nothing to do in a transactional store)."""
        ...

    def audit_chain(self, contract: str) -> AuditChain | None:
        """The contract's chain, or None when it is the log file (`AuditLog` owns it)."""
        ...

    def journal(self, contract: str, name: str) -> Journal | None:
        """A journal of the contract (`check_journal_name`), or None when it is its file."""
        ...

    def read_blob(self, contract: str, name: str) -> bytes | None:
        """A named blob of the contract (`BLOB_NAMES`), or None if never written."""
        ...

    def write_blob(self, contract: str, name: str, data: bytes) -> None:
        """Replace a named blob, atomically."""
        ...

    def read_blob_tagged(self, contract: str, name: str) -> tuple[bytes | None, str]:
        """A named blob and its tag (`blob_tag`), read together."""
        ...

    def delete_blob(self, contract: str, name: str) -> bool:
        """Remove a named blob (the exit's erasure); True when there was one."""
        ...

    def write_blob_if(self, contract: str, name: str, data: bytes, expected: str) -> str:
        """Replace the blob if its tag is still `expected`; return the new tag.

        Raises StateConflict, writing nothing, when another writer changed
        the blob since the caller read it.
        """
        ...


@dataclass(frozen=True)
class StateUrl:
    """What `HANDOVER_STATE_URL` says: the local folder (and which), or a PostgreSQL URL."""

    kind: str  # "file" or "postgresql"
    folder: Path | None = None  # file: the folder of contract folders (None: the home's)
    url: str | None = None  # postgresql: the URL as given (may hold a password: never log it)


def parse_state_url(value: str | None) -> StateUrl:
    """Read a state URL; UsageError (exit 2) for anything else, naming what is accepted."""
    if value is None or not value.strip() or value.strip() == "file:":
        return StateUrl("file")
    text = value.strip()
    scheme = text.split(":", 1)[0].lower()
    if scheme == "file":
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise UsageError(f"{STATE_URL_ENV}: a file URL names a local folder: file:///path")
        return StateUrl("file", folder=Path(unquote(parts.path)))
    if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        return StateUrl("postgresql", url=text)
    raise UsageError(
        f"{STATE_URL_ENV}: unsupported scheme {scheme!r}: use file: (the local folder) "
        "or postgresql://user@host/database"
    )


def state_url() -> StateUrl:
    """The state URL of this process (`HANDOVER_STATE_URL`)."""
    return parse_state_url(os.environ.get(STATE_URL_ENV))


def check_blob_name(name: str) -> str:
    """`name` if it is a blob a store keeps; UsageError otherwise (no path games)."""
    if name not in BLOB_NAMES:
        raise UsageError(f"state blob {name!r}: one of {', '.join(sorted(BLOB_NAMES))}")
    return name


#: How many times `update_blob` reads again after losing a race before it gives up.
BLOB_RETRIES = 50


def update_blob(
    store: ContractStore,
    contract: str,
    name: str,
    change: Callable[[bytes | None], bytes | None],
) -> bytes | None:
    """Apply `change` to the blob as stored, compare-and-set, again on a lost race.

    `change` gets the blob's bytes (None when absent) and returns the new
    bytes, or None to leave it as it is; it may run more than once, so it
    must not act outside its result (raise to refuse). Returns the blob as
    stored afterwards.
    """
    for _ in range(BLOB_RETRIES):
        data, tag = store.read_blob_tagged(contract, name)
        new = change(data)
        if new is None or new == data:
            return data
        try:
            store.write_blob_if(contract, name, new, tag)
        except StateConflict:
            continue
        return new
    raise StateConflict(
        f"{contract}/{name}: changed by other writers {BLOB_RETRIES} times in a row; try again"
    )
