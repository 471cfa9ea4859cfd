"""Signed checkpoints of the audit log's head: what makes a cut or rewritten log show.

The hash chain of `handover.checklist.audit` shows an entry edited, removed
or reordered inside the file. It cannot show the file's last entries cut
off, nor the whole file rewritten with the chain computed again: both leave
a chain that is intact. A checkpoint closes that gap. It is the chain head
(seq and hash), the contract, the time and a reason ("takeover end",
"before sealing"), signed with the provider's signing key in the SSH
signature namespace `handover-audit`, so that later:

- a log that ends before a checkpoint's seq was truncated;
- a log whose entry at a checkpoint's seq has another hash was rewritten;
- a log with entries and no checkpoint at all cannot be vouched for.

Checkpoints live outside the log, one JSON object per line in
`.handover/contracts/<id>/audit-checkpoints.jsonl`, and each is also
recorded in the log itself as an `audit.checkpoint` entry, so deleting the
checkpoints file shows as well. The task layer also publishes each one as a
Prefect event and artifact, a copy outside the contract's folder.

What is signed is `Checkpoint.signed_bytes()`: the canonical JSON (as the
log's own hashes use) of the format name and every field except the key and
the signature. A client checks one with OpenSSH alone: write those bytes to
a file and run `ssh-keygen -Y verify -n handover-audit`.

The checkpoint file holds no secret: public key, fingerprint, signature.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from handover.bundle.sshsig import SigningKey, sign, verify
from handover.checklist.audit import AuditLog, canonical_json
from handover.errors import AuditError, BundleCorrupt, KeyFormatError
from handover.state.atomic import ensure_private_dir
from handover.state.layout import ContractPaths
from handover.state.store import Journal

NAMESPACE = "handover-audit"
CHECKPOINT_EVENT = "audit.checkpoint"
FORMAT = "handover-audit-checkpoint/1"


class Checkpoint(BaseModel):
    """The signed head of one contract's audit log at one moment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    contract: str = Field(min_length=1)
    seq: int = Field(ge=1)
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    at: str = Field(min_length=1)  # ISO 8601 UTC, as written: signed as text, never re-rendered
    reason: str = Field(min_length=1)
    signer: str  # SHA256:... fingerprint of the signing key
    public_key: str  # the signer's public key line (self-asserted until checked against another)
    signature: str  # armored SSH signature of signed_bytes()

    def signed_bytes(self) -> bytes:
        """The bytes the signature covers (the same for signing and for checking)."""
        return canonical_json(
            {
                "format": FORMAT,
                "contract": self.contract,
                "seq": self.seq,
                "hash": self.hash,
                "at": self.at,
                "reason": self.reason,
                "signer": self.signer,
            }
        )

    @property
    def signature_sha256(self) -> str:
        """A short handle on the signature, for events and tables (the signature is public)."""
        return hashlib.sha256(self.signature.encode("ascii")).hexdigest()

    def label(self) -> str:
        """`checkpoint of 2026-02-01 09:00:00 UTC (takeover end)`: how problems name it."""
        return f"checkpoint of {_when(self.at)} ({self.reason})"


def _when(at: str) -> str:
    try:
        return datetime.fromisoformat(at).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return at


class CheckpointFile:
    """The checkpoints of one contract: JSON Lines, appended under an `flock`, fsynced.

    With `journal` (from a database state store: `ChecklistStore.checkpoints`)
    the lines are kept there, for every worker, and `path` is only where an
    export writes them.
    """

    def __init__(self, path: Path, journal: Journal | None = None) -> None:
        self.path = Path(path)
        self.journal = journal

    @classmethod
    def beside(cls, log: AuditLog) -> CheckpointFile:
        """The checkpoints file of the contract folder that holds `log`."""
        folder = log.path.parent
        return cls(ContractPaths(folder.name, folder.parent).audit_checkpoints)

    def append(self, checkpoint: Checkpoint) -> None:
        if self.journal is not None:
            self.journal.append(checkpoint.model_dump_json().encode("utf-8"))
            return
        ensure_private_dir(self.path.parent)
        line = checkpoint.model_dump_json().encode("utf-8") + b"\n"
        with self._locked() as fd:
            os.write(fd, line)
            os.fsync(fd)

    def read(self) -> tuple[list[Checkpoint], list[str]]:
        """Every checkpoint, in file order, and one problem per line that is not one."""
        checkpoints: list[Checkpoint] = []
        problems: list[str] = []
        if self.journal is not None:
            lines, where = self.journal.lines(), self.journal.where
        elif self.path.exists():
            lines, where = self.path.read_bytes().splitlines(), str(self.path)
        else:
            return checkpoints, problems
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                checkpoints.append(Checkpoint.model_validate_json(line))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "line"
                problems.append(
                    f"{where}:{number}: not a checkpoint ({where}: {first['msg']}): edited or torn"
                )
        return checkpoints, problems

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)  # closing releases the flock


def make_checkpoint(
    log: AuditLog,
    key: SigningKey,
    reason: str,
    *,
    contract: str | None = None,
    checkpoints: CheckpointFile | None = None,
    actor: str = "handover",
) -> Checkpoint:
    """Sign the log's head, store the checkpoint outside the log, then record it in the log.

    The checkpoints file is written first: a crash before the log entry
    leaves a valid checkpoint the log does not mention, which is harmless;
    the other order could leave the log naming a checkpoint nobody kept.
    `contract` defaults to the name of the log's folder. Raises AuditError
    for an empty log (nothing to vouch for) and AuditTornTail for a torn one.
    """
    if not reason.strip():
        raise AuditError("an audit checkpoint needs a reason (e.g. 'takeover end')")
    head = log.head()
    if head is None:
        raise AuditError(f"{log.path}: no audit entry yet, nothing to checkpoint")
    unsigned = Checkpoint.model_construct(
        contract=contract or log.path.parent.name,
        seq=int(head["seq"]),
        hash=str(head["hash"]),
        at=datetime.now(UTC).isoformat(timespec="microseconds"),
        reason=reason.strip(),
        signer=key.fingerprint(),
        public_key=key.public_line("handover-audit"),
        signature="",
    )
    checkpoint = Checkpoint.model_validate(
        {
            **unsigned.model_dump(),
            "signature": sign(unsigned.signed_bytes(), key, NAMESPACE),
        }
    )
    (checkpoints or CheckpointFile.beside(log)).append(checkpoint)
    log.append(
        CHECKPOINT_EVENT,
        actor,
        **checkpoint.model_dump(exclude={"public_key"}),
    )
    return checkpoint


@dataclass
class CheckpointCheck:
    """What checking a log against its checkpoints found."""

    problems: list[str] = field(default_factory=list)
    latest: Checkpoint | None = None  # the newest checkpoint whose signature and hash hold
    unsigned_after: int = 0  # entries after `latest` that no checkpoint covers yet
    checked: int = 0  # checkpoints whose signature held


def check_checkpoints(
    log: AuditLog,
    checkpoints: Sequence[Checkpoint],
    public_line: str,
    *,
    contract: str | None = None,
) -> CheckpointCheck:
    """Check every checkpoint's signature against `public_line`, then the log against them.

    Only checkpoints whose signature holds are believed. Problems say what
    and which: truncated, rewritten, missing, no checkpoint, signature
    invalid. Lines of the log that are not entries are skipped here (the
    chain check reports them).
    """
    result = CheckpointCheck()
    entries = log.readable_entries()
    by_seq: dict[int, dict[str, Any]] = {}
    for entry in entries:
        by_seq.setdefault(int(entry["seq"]), entry)
    last_seq = int(entries[-1]["seq"]) if entries else 0

    valid = [
        cp for cp in checkpoints if _signature_holds(cp, public_line, contract, result.problems)
    ]
    result.checked = len(valid)
    if entries and not checkpoints:
        result.problems.append(
            f"no checkpoint: the log has {len(entries)} entries and none is signed"
        )
    matched: list[Checkpoint] = []
    for cp in sorted(valid, key=lambda c: (c.seq, c.at)):
        problem = _head_problem(by_seq, last_seq, cp.seq, cp.hash, cp.label())
        if problem is None:
            matched.append(cp)
            continue
        still = [m for m in matched if m.seq < cp.seq]
        if problem.startswith("rewritten") and still:
            problem += f" (after seq {still[-1].seq}, which {still[-1].label()} still matches)"
        result.problems.append(problem)
    result.problems.extend(_unkept_checkpoints(entries, checkpoints))
    if matched:
        result.latest = max(matched, key=lambda c: (c.seq, c.at))
        result.unsigned_after = sum(
            1
            for entry in entries
            if int(entry["seq"]) > result.latest.seq and entry.get("event") != CHECKPOINT_EVENT
        )
    return result


def check_published(log: AuditLog, seq: int, hash: str, what: str) -> list[str]:
    """The log against a head published elsewhere (a Prefect event): truncated or rewritten.

    `what` names the publication in the problem, e.g. "checkpoint published
    at 2026-02-01 09:00:00 UTC". Catches a log deleted or rewritten together
    with its checkpoints file.
    """
    entries = log.readable_entries()
    by_seq: dict[int, dict[str, Any]] = {}
    for entry in entries:
        by_seq.setdefault(int(entry["seq"]), entry)
    last_seq = int(entries[-1]["seq"]) if entries else 0
    problem = _head_problem(by_seq, last_seq, seq, hash, what)
    return [] if problem is None else [problem]


def _head_problem(
    by_seq: dict[int, dict[str, Any]], last_seq: int, seq: int, hash: str, what: str
) -> str | None:
    """What is wrong with the log against one signed head (None when it holds)."""
    if seq > last_seq:
        return f"truncated: the log ends at seq {last_seq} but {what} signed seq {seq}"
    entry = by_seq.get(seq)
    if entry is None:
        return f"removed: entry {seq}, which {what} signed, is not in the log"
    if entry.get("hash") != hash:
        return f"rewritten: entry {seq} hash differs from the one {what} signed"
    return None


def verify_against_checkpoints(
    log: AuditLog, checkpoints: Sequence[Checkpoint], public_line: str
) -> list[str]:
    """The problems of `check_checkpoints`, one line each (empty when the log holds)."""
    return check_checkpoints(log, checkpoints, public_line).problems


def self_asserted_key(checkpoints: Sequence[Checkpoint]) -> str | None:
    """The public key the newest checkpoint names: proves only that one key signed them all."""
    return checkpoints[-1].public_key if checkpoints else None


def _signature_holds(
    cp: Checkpoint, public_line: str, contract: str | None, problems: list[str]
) -> bool:
    try:
        verify(cp.signed_bytes(), cp.signature, public_line, NAMESPACE)
    except (BundleCorrupt, KeyFormatError) as exc:
        problems.append(f"checkpoint signature invalid: {cp.label()}, seq {cp.seq}: {exc}")
        return False
    if contract is not None and cp.contract != contract:
        problems.append(
            f"checkpoint of another contract: {cp.label()} was signed for {cp.contract!r}, "
            f"not {contract!r}"
        )
        return False
    return True


def _unkept_checkpoints(
    entries: Sequence[dict[str, Any]], checkpoints: Sequence[Checkpoint]
) -> list[str]:
    """Checkpoints the log records (`audit.checkpoint`) that the checkpoints file lacks."""
    kept = {(cp.seq, cp.signature) for cp in checkpoints}
    problems: list[str] = []
    for entry in entries:
        if entry.get("event") != CHECKPOINT_EVENT:
            continue
        data = entry.get("data")
        if not isinstance(data, dict):
            continue
        if (data.get("seq"), data.get("signature")) not in kept:
            problems.append(
                f"checkpoint missing: log entry {entry['seq']} records the checkpoint of "
                f"{_when(str(data.get('at', '?')))} ({data.get('reason', '?')}) for seq "
                f"{data.get('seq', '?')}, which the checkpoints file does not hold (deleted?)"
            )
    return problems
