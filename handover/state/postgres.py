"""The contracts' state in PostgreSQL: one audit chain and one checklist version, for teams.

Runs of one contract may land on several workers. Each keeps nothing of
the contract on its own disk that another would need: checklists, audit
entries and blobs are rows, and every write is one transaction.

- `handover_contracts` holds one head row per contract: the chain's last
  `seq` and `hash`. Every append and every checklist commit first takes
  that row `FOR UPDATE`, so writers of one contract queue on it and each
  chains on the head the previous one committed: no fork, no lost entry.
- `handover_audit` holds the entries, `(contract, seq)` unique, each with
  its `prev_hash`, `hash` and `body` (the entry's canonical JSON, the
  exact line the log file would hold and the bundle carries).
- `handover_checklists` keeps every version of every checklist, `(contract,
  phase, version)` unique: the current one is the highest. A commit is a
  compare-and-set on it, in the same transaction as its audit entries.
- `handover_blobs` holds small named blobs (vault, known_hosts...).

`lock(contract)` is a session advisory lock on a connection of its own: a
worker killed while holding it loses its connection, and PostgreSQL
releases the lock. The schema is created when absent, under a transaction
advisory lock so that two workers starting together do not race.

The URL may carry a password: messages show it hidden.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    create_engine,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from handover.errors import HandoverError, UsageError
from handover.state.chain import GENESIS, canonical_json, entry_hash, next_entry
from handover.state.store import (
    ABSENT,
    AuditChain,
    Journal,
    Record,
    StateConflict,
    blob_tag,
    check_blob_name,
    check_journal_name,
)

metadata = MetaData()

contracts_table = Table(
    "handover_contracts",
    metadata,
    Column("contract", Text, primary_key=True),
    Column("audit_seq", BigInteger, nullable=False, server_default=text("0")),
    Column("audit_hash", Text, nullable=False, server_default=text(f"'{GENESIS}'")),
)
audit_table = Table(
    "handover_audit",
    metadata,
    Column("contract", Text, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("prev_hash", Text, nullable=False),
    Column("hash", Text, nullable=False),
    Column("body", Text, nullable=False),
    PrimaryKeyConstraint("contract", "seq"),
)
checklists_table = Table(
    "handover_checklists",
    metadata,
    Column("contract", Text, nullable=False),
    Column("phase", Text, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("state", LargeBinary, nullable=False),
    PrimaryKeyConstraint("contract", "phase", "version"),
)
blobs_table = Table(
    "handover_blobs",
    metadata,
    Column("contract", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("data", LargeBinary, nullable=False),
    PrimaryKeyConstraint("contract", "name"),
)

journals_table = Table(
    "handover_journals",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("contract", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("line", LargeBinary, nullable=False),
)

_SCHEMA_LOCK = 0x68616E646F766572  # "handover": the advisory lock of schema creation
_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def _forget_engines_after_fork() -> None:
    """A forked child must not use its parent's connections: it opens its own."""
    for engine in _engines.values():
        engine.dispose(close=False)
    _engines.clear()


os.register_at_fork(after_in_child=_forget_engines_after_fork)


def engine_for(url: str) -> Engine:
    """One engine per URL and process, schema created on first use."""
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _create(url)
            _engines[url] = engine
        return engine


def close_engine(url: str) -> None:
    """Close this process's connections to `url` (before its database goes away)."""
    with _engines_lock:
        engine = _engines.pop(url, None)
    if engine is not None:
        engine.dispose()


def _create(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise UsageError(f"HANDOVER_STATE_URL: not a database URL ({exc})") from None
    # Whatever driver the URL names (Prefect's own URL says +asyncpg), the store is synchronous.
    parsed = parsed.set(drivername="postgresql+psycopg")
    shown = parsed.render_as_string(hide_password=True)
    engine = create_engine(parsed, pool_pre_ping=True)
    try:
        with engine.begin() as conn:
            conn.execute(select(func.pg_advisory_xact_lock(_SCHEMA_LOCK)))
            metadata.create_all(conn)
            # Journals are read by contract and name in id order (a month of health samples is
            # ~9,000 rows per check): an index for that, also on a database made before it.
            conn.execute(
                text(
                    "CREATE INDEX IF NOT EXISTS handover_journals_by_name "
                    "ON handover_journals (contract, name, id)"
                )
            )
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise HandoverError(f"state store {shown}: cannot connect ({reason})") from None
    return engine


class PostgresStore:
    """Contracts' checklists, audit chains and blobs in one PostgreSQL database."""

    def __init__(self, url: str) -> None:
        self.engine = engine_for(url)
        self._shown = self.engine.url.render_as_string(hide_password=True)

    @property
    def where(self) -> str:
        return self._shown

    # -- the contract's lock ------------------------------------------------

    @contextlib.contextmanager
    def lock(self, contract: str) -> Iterator[None]:
        """A session advisory lock on a connection held for the block (see the docstring).

        Threads of this process queue on a thread lock first, so that only
        one of them holds a pooled connection while it waits for the
        database: the holder's own queries need connections of the pool too.
        """
        with (
            _thread_lock(self.engine, contract),
            self._errors(contract),
            self.engine.connect() as conn,
        ):
            key = _lock_key(contract)
            conn.execute(select(func.pg_advisory_lock(key)))
            conn.commit()
            try:
                yield
            finally:
                try:
                    conn.execute(select(func.pg_advisory_unlock(key)))
                    conn.commit()
                except SQLAlchemyError:  # never back to the pool with the lock maybe held
                    conn.invalidate()

    def contracts(self) -> list[str]:
        with self._errors("*"), self.engine.connect() as conn:
            rows = conn.execute(
                select(contracts_table.c.contract).order_by(contracts_table.c.contract)
            )
            return [str(row.contract) for row in rows]

    # -- checklists ---------------------------------------------------------

    def read_checklist(self, contract: str, phase: str) -> bytes | None:
        with self._errors(contract), self.engine.connect() as conn:
            row = conn.execute(
                select(checklists_table.c.state)
                .where(
                    checklists_table.c.contract == contract,
                    checklists_table.c.phase == phase,
                )
                .order_by(checklists_table.c.version.desc())
                .limit(1)
            ).first()
        return None if row is None else bytes(row.state)

    def checklist_names(self, contract: str) -> list[str]:
        with self._errors(contract), self.engine.connect() as conn:
            rows = conn.execute(
                select(checklists_table.c.phase)
                .where(checklists_table.c.contract == contract)
                .distinct()
                .order_by(checklists_table.c.phase)
            )
            return [str(row.phase) for row in rows]

    def commit_checklist(
        self,
        contract: str,
        phase: str,
        expected_version: int,
        state: bytes,
        records: Sequence[Record],
    ) -> list[dict[str, Any]]:
        """Head row locked, version compared, entries and new version inserted: one transaction."""
        with self._errors(contract), self.engine.begin() as conn:
            head = _lock_head(conn, contract)
            stored = conn.execute(
                select(func.coalesce(func.max(checklists_table.c.version), 0)).where(
                    checklists_table.c.contract == contract,
                    checklists_table.c.phase == phase,
                )
            ).scalar_one()
            if stored != expected_version:
                raise StateConflict(
                    f"{contract}/{phase}: checklist is at version {stored}, this change was "
                    f"made on version {expected_version} (another worker changed it): reload"
                )
            entries = _append(conn, contract, head, records)
            conn.execute(
                checklists_table.insert().values(
                    contract=contract,
                    phase=phase,
                    version=expected_version + 1,
                    sha256=hashlib.sha256(state).hexdigest(),
                    state=state,
                )
            )
        return entries

    def pending(self, contract: str, phase: str) -> str | None:
        return None  # a transaction commits whole or not at all

    def recover(self, contract: str, phase: str) -> None:
        return None

    # -- the audit chain ----------------------------------------------------

    def audit_chain(self, contract: str) -> AuditChain:
        return PostgresChain(self, contract)

    def journal(self, contract: str, name: str) -> Journal:
        return PostgresJournal(self, contract, check_journal_name(name))

    def adopt(
        self,
        contract: str,
        lines: Iterable[bytes],
        checklists: Mapping[str, bytes],
        checkpoints: Sequence[bytes],
    ) -> int:
        """Take over a contract's state kept elsewhere, entries verbatim: one transaction.

        For moving a contract from a folder to the database: the chain keeps
        its hashes (checkpoints signed before still hold), each checklist its
        version. Refused (HandoverError, nothing written) when the database
        already holds anything of the contract, since two chains would then
        meet, or when the lines do not chain. Returns the entries adopted.
        """
        with self._errors(contract), self.engine.begin() as conn:
            seq, digest = _lock_head(conn, contract)
            held = conn.execute(
                select(checklists_table.c.version)
                .where(checklists_table.c.contract == contract)
                .limit(1)
            ).first()
            if seq or held is not None:
                raise HandoverError(
                    f"{self.where}: already holds contract {contract!r} (audit seq {seq}): "
                    "adopting another copy would fork its chain"
                )
            for line in lines:
                try:
                    entry = json.loads(line)
                except ValueError:
                    entry = {}
                if not isinstance(entry, dict) or (
                    entry.get("seq") != seq + 1
                    or entry.get("prev") != digest
                    or entry_hash(entry) != entry.get("hash")
                ):
                    raise HandoverError(
                        f"{contract}: audit entry {seq + 1} does not chain (verify the log first)"
                    )
                seq, digest = int(entry["seq"]), str(entry["hash"])
                conn.execute(
                    audit_table.insert().values(
                        contract=contract,
                        seq=seq,
                        prev_hash=entry["prev"],
                        hash=digest,
                        body=line.decode("utf-8"),
                    )
                )
            conn.execute(
                contracts_table.update()
                .where(contracts_table.c.contract == contract)
                .values(audit_seq=seq, audit_hash=digest)
            )
            for name, state in checklists.items():
                version = json.loads(state).get("version")
                if not isinstance(version, int):
                    raise HandoverError(f"{contract}/{name}: checklist without a version")
                conn.execute(
                    checklists_table.insert().values(
                        contract=contract,
                        phase=name,
                        version=version,
                        sha256=hashlib.sha256(state).hexdigest(),
                        state=state,
                    )
                )
            for line in checkpoints:
                conn.execute(
                    journals_table.insert().values(
                        contract=contract, name="audit-checkpoints", line=line
                    )
                )
        return seq

    # -- blobs --------------------------------------------------------------

    def read_blob(self, contract: str, name: str) -> bytes | None:
        check_blob_name(name)
        with self._errors(contract), self.engine.connect() as conn:
            row = conn.execute(
                select(blobs_table.c.data).where(
                    blobs_table.c.contract == contract, blobs_table.c.name == name
                )
            ).first()
        return None if row is None else bytes(row.data)

    def write_blob(self, contract: str, name: str, data: bytes) -> None:
        check_blob_name(name)
        digest = hashlib.sha256(data).hexdigest()
        statement = insert(blobs_table).values(
            contract=contract, name=name, sha256=digest, data=data
        )
        with self._errors(contract), self.engine.begin() as conn:
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["contract", "name"],
                    set_={"sha256": statement.excluded.sha256, "data": statement.excluded.data},
                )
            )

    def delete_blob(self, contract: str, name: str) -> bool:
        check_blob_name(name)
        with self._errors(contract), self.engine.begin() as conn:
            gone = conn.execute(
                blobs_table.delete()
                .where(blobs_table.c.contract == contract, blobs_table.c.name == name)
                .returning(blobs_table.c.name)
            ).first()
        return gone is not None

    def read_blob_tagged(self, contract: str, name: str) -> tuple[bytes | None, str]:
        data = self.read_blob(contract, name)
        return data, blob_tag(data)

    def write_blob_if(self, contract: str, name: str, data: bytes, expected: str) -> str:
        """One statement decides: insert if absent, or update the row still holding `expected`.

        Either is atomic in PostgreSQL (a concurrent insert of the same key
        waits, then does nothing; a concurrent update re-checks the tag on
        the row it waited for), so of two writers on one tag exactly one wins.
        """
        check_blob_name(name)
        digest = blob_tag(data)
        where = (blobs_table.c.contract == contract) & (blobs_table.c.name == name)
        with self._errors(contract), self.engine.begin() as conn:
            if expected == ABSENT:
                result = conn.execute(
                    insert(blobs_table)
                    .values(contract=contract, name=name, sha256=digest, data=data)
                    .on_conflict_do_nothing(index_elements=["contract", "name"])
                    .returning(blobs_table.c.name)
                )
            else:
                result = conn.execute(
                    blobs_table.update()
                    .where(where & (blobs_table.c.sha256 == expected))
                    .values(sha256=digest, data=data)
                    .returning(blobs_table.c.name)
                )
            if result.first() is None:  # (rowcount is not reported for an upsert)
                raise StateConflict(
                    f"{contract}/{name}: changed by another worker since it was read: read again"
                )
        return digest

    @contextlib.contextmanager
    def _errors(self, contract: str) -> Iterator[None]:
        """Database failures as one line naming the store and the contract (no password)."""
        try:
            yield
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise HandoverError(f"state store {self.where}: {contract}: {reason}") from None


class PostgresChain:
    """One contract's audit chain in PostgreSQL (`AuditChain`)."""

    def __init__(self, store: PostgresStore, contract: str) -> None:
        self.store = store
        self.contract = contract

    @property
    def where(self) -> str:
        return f"{self.store.where} audit chain of {self.contract}"

    def append(self, records: Sequence[Record]) -> list[dict[str, Any]]:
        with self.store._errors(self.contract), self.store.engine.begin() as conn:
            head = _lock_head(conn, self.contract)
            return _append(conn, self.contract, head, records)

    def head(self) -> dict[str, Any] | None:
        with self.store._errors(self.contract), self.store.engine.connect() as conn:
            row = conn.execute(
                select(audit_table.c.body)
                .where(audit_table.c.contract == self.contract)
                .order_by(audit_table.c.seq.desc())
                .limit(1)
            ).first()
        if row is None:
            return None
        value: dict[str, Any] = json.loads(row.body)
        return value

    def lines(self) -> Iterator[tuple[int, bytes]]:
        with self.store._errors(self.contract), self.store.engine.connect() as conn:
            result = conn.execution_options(yield_per=1000).execute(
                select(audit_table.c.body)
                .where(audit_table.c.contract == self.contract)
                .order_by(audit_table.c.seq)
            )
            for number, row in enumerate(result, start=1):
                yield number, row.body.encode("utf-8")

    def exists(self) -> bool:
        with self.store._errors(self.contract), self.store.engine.connect() as conn:
            row = conn.execute(
                select(audit_table.c.seq).where(audit_table.c.contract == self.contract).limit(1)
            ).first()
        return row is not None


_thread_locks: dict[tuple[str, str], threading.Lock] = {}


def _thread_lock(engine: Engine, contract: str) -> threading.Lock:
    """The process-wide lock of one contract in one database."""
    key = (engine.url.render_as_string(hide_password=False), contract)
    with _engines_lock:
        return _thread_locks.setdefault(key, threading.Lock())


class PostgresJournal:
    """One contract's journal in PostgreSQL (`Journal`): rows in the order of their ids."""

    def __init__(self, store: PostgresStore, contract: str, name: str) -> None:
        self.store, self.contract, self.name = store, contract, name

    @property
    def where(self) -> str:
        return f"{self.store.where} journal {self.name} of {self.contract}"

    def append(self, line: bytes) -> None:
        with self.store._errors(self.contract), self.store.engine.begin() as conn:
            conn.execute(
                journals_table.insert().values(contract=self.contract, name=self.name, line=line)
            )

    def append_decided(self, decide: Callable[[bytes], Sequence[bytes]]) -> None:
        """One transaction under the journal's transaction advisory lock: read, decide, insert.

        A lock of its own (not the contract's `lock`), released at commit or
        rollback: a caller holding the contract's lock can still append.
        """
        key = _lock_key(f"{self.contract}\0journal\0{self.name}")
        with self.store._errors(self.contract), self.store.engine.begin() as conn:
            conn.execute(select(func.pg_advisory_xact_lock(key)))
            rows = conn.execute(self._select())
            data = b"".join(bytes(row.line) + b"\n" for row in rows)
            for line in decide(data):
                conn.execute(
                    journals_table.insert().values(
                        contract=self.contract, name=self.name, line=line
                    )
                )

    def _select(self) -> Any:
        return (
            select(journals_table.c.line)
            .where(journals_table.c.contract == self.contract)
            .where(journals_table.c.name == self.name)
            .order_by(journals_table.c.id)
        )

    def lines(self) -> list[bytes]:
        with self.store._errors(self.contract), self.store.engine.connect() as conn:
            rows = conn.execute(self._select())
            return [bytes(row.line) for row in rows]

    def iter_lines(self) -> Iterator[bytes]:
        """The lines in order, 1,000 rows at a time (a month of samples: ~9,000 per check).

        A server-side cursor: the reader holds one batch, not the journal.
        """
        with self.store._errors(self.contract), self.store.engine.connect() as conn:
            rows = conn.execution_options(stream_results=True, yield_per=1000).execute(
                self._select()
            )
            for row in rows:
                yield bytes(row.line)


def _lock_key(contract: str) -> int:
    """A signed 64-bit advisory lock key for the contract (stable across processes)."""
    digest = hashlib.sha256(f"handover-contract:{contract}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _lock_head(conn: Connection, contract: str) -> tuple[int, str]:
    """The contract's head row (created if absent), locked until the transaction ends."""
    conn.execute(insert(contracts_table).values(contract=contract).on_conflict_do_nothing())
    row = conn.execute(
        select(contracts_table.c.audit_seq, contracts_table.c.audit_hash)
        .where(contracts_table.c.contract == contract)
        .with_for_update()
    ).one()
    return int(row.audit_seq), str(row.audit_hash)


def _append(
    conn: Connection, contract: str, head: tuple[int, str], records: Sequence[Record]
) -> list[dict[str, Any]]:
    """Insert `records` chained on `head` and move the head; the caller holds its row lock."""
    seq, digest = head
    last: dict[str, Any] | None = {"seq": seq, "hash": digest} if seq else None
    entries: list[dict[str, Any]] = []
    for event, actor, data in records:
        entry = next_entry(last, event, actor, data)
        conn.execute(
            audit_table.insert().values(
                contract=contract,
                seq=entry["seq"],
                prev_hash=entry["prev"],
                hash=entry["hash"],
                body=canonical_json(entry).decode("utf-8"),
            )
        )
        entries.append(entry)
        last = entry
    if last is not None and entries:
        conn.execute(
            contracts_table.update()
            .where(contracts_table.c.contract == contract)
            .values(audit_seq=last["seq"], audit_hash=last["hash"])
        )
    return entries
