"""Erasure of the provider's copies after the client's acceptance: what is deleted, checked, kept.

Once the client has accepted the restitution bundle, the provider deletes
what it still holds of the contract (local store folders, backups, S3
prefixes, the vault file). `erase_contract_copies` deletes every target,
never stopping at the first failure, and returns an `ErasureReport` saying
what was erased, where, how, when and by whom, what remains and why, and
what the provider keeps on purpose (`KeptRecord`); the signed certificate
made from it is `handover.exit.erasure_certificate`.

Every deletion is checked afterwards, never assumed: a local path must be
gone (`lstat` finds nothing), an S3 deleter reports what listing the prefix
again still shows. A target whose data is partly gone is `failed` with the
count left and the reason (error types and codes, never a client file
name); its `objects`/`bytes` count only what is verified gone.

The vault goes last, and only when every other target is erased or absent:
a rerun after a failure needs the credentials it holds (the S3 keys, often
the signing key). Until then it is `postponed`, which counts as remaining.

A rerun finds the targets a crashed run deleted already gone (`absent`,
not a failure). Given the earlier runs' records (`previous`), a target's
record adds up what each run checked gone: the earlier counts plus this
run's, the first run's time in `at`, this run's check in `verified_at`; a
target an earlier run erased and this run finds absent stays `erased`.

Deletion is the file system's `unlink` (and S3 `DeleteObjects`): it removes
the data from the provider's systems as far as the provider controls them;
it does not overwrite storage blocks, and the certificate says so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from handover.actor import actor as default_actor
from handover.errors import HandoverError
from handover.state.home import handover_home
from handover.state.shared_blob import SharedBlob, shared_blob

TargetKind = Literal["local", "backups", "vault", "s3", "other"]
Status = Literal["erased", "absent", "failed", "refused", "postponed"]
KeptKind = Literal["exempted", "legal-retention", "evidence"]
DONE: tuple[Status, ...] = ("erased", "absent")


@dataclass(frozen=True)
class DeletionResult:
    """What a deleter callable reports, after checking: removed, found, still there, why.

    `objects`/`bytes`: removed and verified gone (bytes 0 when unknown).
    `found`: entries present before deletion (0: already absent; None:
    unknown, then `objects == 0` means absent). `remaining`: entries a
    listing after the deletion still shows. `error`: why some could not be
    deleted (counts and codes, never a client file name). Anything remaining
    or an error fails the target.
    """

    objects: int
    bytes: int = 0
    found: int | None = None
    remaining: int = 0
    error: str = ""


@dataclass(frozen=True)
class ErasureTarget:
    """One copy to erase. Local kinds name a path; `s3`/`other` need a `delete` callable.

    `delete` (for S3: a function of the caller's that deletes every object and
    version under the prefix, lists it again and returns a DeletionResult)
    keeps this module free of boto3.
    """

    kind: TargetKind
    location: str
    description: str = ""
    method: str = ""
    delete: Callable[[], DeletionResult] | None = None


def path_target(kind: TargetKind, path: Path, description: str = "") -> ErasureTarget:
    """A local folder or file (store, backups) to delete recursively."""
    return ErasureTarget(kind, str(Path(path).absolute()), description)


def vault_target(vault_path: Path) -> ErasureTarget:
    """The contract's vault file (its lock file goes with it); always erased last.

    With a shared state store the vault is the store's blob too
    (`handover.state.shared_blob`): both copies are deleted and checked gone,
    and the description names the store, so the certificate says both.
    """
    path = vault_path.absolute()
    shared = shared_blob(path)
    if shared is None:
        return ErasureTarget("vault", str(path), "credential vault")
    return ErasureTarget(
        "vault",
        str(path),
        f"credential vault (this worker's copy, and the shared one in {shared.store.where})",
        "unlink of the file; DELETE of the state store's vault.age row",
        _shared_vault_deleter(shared),
    )


def _shared_vault_deleter(shared: SharedBlob) -> Callable[[], DeletionResult]:
    """Delete the store's vault blob and this worker's copy, then check both gone."""

    def delete() -> DeletionResult:
        stored = shared.store.read_blob(shared.contract, shared.name)
        local = shared.path.stat().st_size if shared.path.is_file() else None
        found = (stored is not None) + (local is not None)
        size = (len(stored) if stored is not None else 0) + (local or 0)
        errors: list[str] = []
        try:
            shared.store.delete_blob(shared.contract, shared.name)
        except HandoverError as exc:
            errors.append(f"state store: {type(exc).__name__}")
        for path in (shared.path, shared.path.with_name(shared.path.name + ".lock")):
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                errors.append(f"{path.name}: {exc.strerror}")
        remaining = (shared.store.read_blob(shared.contract, shared.name) is not None) + (
            _present(shared.path)
        )
        gone = found - remaining
        return DeletionResult(
            objects=max(gone, 0),
            bytes=size if remaining == 0 else 0,
            found=found,
            remaining=remaining,
            error="; ".join(errors),
        )

    return delete


def s3_target(
    url: str,
    delete: Callable[[], DeletionResult],
    description: str = "",
    method: str = "S3 DeleteObjects (every object version under the prefix)",
) -> ErasureTarget:
    return ErasureTarget("s3", url, description, method, delete)


class KeptRecord(BaseModel):
    """Something the provider keeps after the erasure, where it is and why.

    `exempted`: a category the playbook exempts from erasure; `legal-retention`:
    one exempted with a legal basis (kept until its retention period ends);
    `evidence`: the provider's own records of how the contract was performed.
    `where` is "" when the playbook does not say (an exempted category).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: KeptKind
    what: str
    where: str
    reason: str
    basis: str = ""  # the legal basis, when one is given


class ErasureRecord(BaseModel):
    """What happened to one target (evidence line of the certificate).

    `objects`/`bytes`: verified gone. `remaining`: entries still present
    after the deletion (files, S3 versions). `verified_at`: when the target
    was last checked gone (None when it was not: failed, refused, postponed).
    """

    kind: str
    location: str
    description: str
    method: str
    status: Status
    objects: int
    bytes: int
    at: datetime
    by: str
    error: str = ""
    remaining: int = 0
    verified_at: datetime | None = None


class ErasureReport(BaseModel):
    contract_id: str
    by: str
    started_at: datetime
    finished_at: datetime
    records: list[ErasureRecord]
    kept: list[KeptRecord] = []

    @property
    def complete(self) -> bool:
        """True when every target is erased or was already absent, checked."""
        return all(r.status in DONE for r in self.records)

    def remaining(self) -> list[str]:
        """The locations still holding (or maybe holding) something meant to go."""
        return [r.location for r in self.records if r.status not in DONE]

    def problems(self) -> list[str]:
        return [f"{r.location}: {r.status}: {r.error}" for r in self.records if r.error]


def _forbidden(path: Path) -> str:
    """Why `path` must never be deleted wholesale, or "" when it may be."""
    resolved = path.resolve()
    protected = {Path("/"), Path.cwd().resolve(), handover_home().resolve()}
    with contextlib.suppress(RuntimeError, KeyError):  # no HOME and no passwd entry
        protected.add(Path.home().resolve())
    for keep in protected:
        if resolved == keep or resolved in keep.parents:
            return f"refusing to delete {path}: it is or contains {keep}"
    return ""


def _present(path: Path) -> bool:
    """True when `path` exists (a dangling symlink too); an unreadable parent raises."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    return True


def _measure(path: Path) -> tuple[int, int]:
    """Files (and symlinks) under `path` and their size; unreadable folders count as empty."""
    if path.is_symlink() or not path.is_dir():
        return 1, path.lstat().st_size
    files = size = 0
    for folder, dirs, names in os.walk(path):
        for name in names + [d for d in dirs if (Path(folder) / d).is_symlink()]:
            files += 1
            with contextlib.suppress(OSError):
                size += (Path(folder) / name).lstat().st_size
    return files, size


def reason(exc: BaseException) -> str:
    """Why an operation failed, without the file name an OSError carries (client names)."""
    if isinstance(exc, OSError) and not isinstance(exc, HandoverError):
        return f"{type(exc).__name__} ({exc.strerror or f'errno {exc.errno}'})"
    return f"{type(exc).__name__}: {exc}".replace("\n", " ")


def _reasons(errors: list[BaseException]) -> str:
    counts = Counter(reason(e) for e in errors)
    return ", ".join(f"{text} x{n}" if n > 1 else text for text, n in counts.items())


@dataclass(frozen=True)
class _Outcome:
    status: Status
    objects: int = 0
    bytes: int = 0
    method: str = ""
    error: str = ""
    remaining: int = 0


ABSENT_METHOD = "none (already absent when checked)"


def _erase_path(target: ErasureTarget) -> _Outcome:
    path = Path(target.location)
    if not path.is_absolute():
        return _Outcome("refused", error="not an absolute path")
    why = _forbidden(path)
    if why:
        return _Outcome("refused", error=why)
    if not _present(path):
        return _Outcome("absent", method=ABSENT_METHOD)
    objects, size = _measure(path)
    errors: list[BaseException] = []
    if path.is_symlink() or not path.is_dir():
        method = "unlink"
        try:
            path.unlink()
        except OSError as exc:
            errors.append(exc)
        if target.kind == "vault":
            with contextlib.suppress(FileNotFoundError):
                path.with_name(path.name + ".lock").unlink()
    else:
        method = "recursive unlink (rmtree, symlinks not followed)"
        shutil.rmtree(path, onerror=lambda _func, _path, info: errors.append(info[1]))
    if not _present(path):
        return _Outcome("erased", objects, size, method)
    left, left_size = _measure(path)
    error = (
        f"still present after deletion: {left} file(s) left"
        if left
        else "still present after deletion: the folder itself remains"
    )
    if errors:
        error += f" ({_reasons(errors)})"
    return _Outcome(
        "failed", max(0, objects - left), max(0, size - left_size), method, error, max(left, 1)
    )


def _erase_with(target: ErasureTarget, delete: Callable[[], DeletionResult]) -> _Outcome:
    result = delete()
    method = target.method or "caller-provided deletion"
    if result.error or result.remaining:
        problems = [result.error] if result.error else []
        if result.remaining:
            problems.append(f"{result.remaining} entries still present after deletion")
        return _Outcome(
            "failed", result.objects, result.bytes, method, "; ".join(problems), result.remaining
        )
    if result.found == 0 or (result.found is None and result.objects == 0):
        return _Outcome("absent", method=ABSENT_METHOD)
    return _Outcome("erased", result.objects, result.bytes, method)


def _outcome(target: ErasureTarget) -> _Outcome:
    """Erase one target; a failure is an outcome, never raised: the certificate must show it."""
    try:
        if target.delete is not None:
            return _erase_with(target, target.delete)
        if target.kind in ("local", "backups", "vault"):
            return _erase_path(target)
        return _Outcome("refused", error=f"a {target.kind} target needs a delete callable")
    except Exception as exc:
        return _Outcome("failed", method=target.method, error=reason(exc))


def _record(target: ErasureTarget, outcome: _Outcome, by: str, at: datetime) -> ErasureRecord:
    return ErasureRecord(
        kind=target.kind,
        location=target.location,
        description=target.description,
        method=outcome.method or target.method,
        status=outcome.status,
        objects=outcome.objects,
        bytes=outcome.bytes,
        at=at,
        by=by,
        error=outcome.error,
        remaining=outcome.remaining,
        verified_at=datetime.now(UTC) if outcome.status in DONE else None,
    )


def _with_earlier(record: ErasureRecord, earlier: ErasureRecord) -> ErasureRecord:
    """This run's record of a target, adding what earlier runs checked gone there."""
    objects, size = earlier.objects + record.objects, earlier.bytes + record.bytes
    if not (objects or size or earlier.status == "erased"):
        return record
    update: dict[str, object] = {"objects": objects, "bytes": size, "at": earlier.at}
    if record.status == "absent":
        update |= {"status": "erased", "method": earlier.method}
    return record.model_copy(update=update)


def erase_contract_copies(
    contract_id: str,
    targets: list[ErasureTarget],
    *,
    actor: str | None = None,
    kept: Sequence[KeptRecord] = (),
    previous: Sequence[ErasureRecord] = (),
    on_record: Callable[[ErasureRecord], None] | None = None,
) -> ErasureReport:
    """Delete every target, check it, record what happened; never stops at the first failure.

    A target that fails (or is refused: `/`, the home folder, the working
    folder, `.handover/` itself or one of their parents) is recorded with its
    error, so the report and certificate show it; check `report.complete`.
    Vault targets go last, only when every other target is done (else
    `postponed`); records come in the order of deletion. `previous`: an
    earlier run's records (see the module docstring); `on_record` is called
    with each record as soon as it is made, so a caller can journal progress
    before the next deletion.
    """
    by = actor or default_actor()
    started = datetime.now(UTC)
    earlier_records = {r.location: r for r in previous}
    ordered = [t for t in targets if t.kind != "vault"] + [t for t in targets if t.kind == "vault"]
    records: list[ErasureRecord] = []
    for target in ordered:
        at = datetime.now(UTC)
        if target.kind == "vault" and not all(r.status in DONE for r in records):
            outcome = _Outcome(
                "postponed",
                error="not deleted yet: other copies remain, and the rerun that erases them "
                "needs the credentials the vault holds",
            )
        else:
            outcome = _outcome(target)
        record = _record(target, outcome, by, at)
        earlier = earlier_records.get(target.location)
        if earlier is not None:
            record = _with_earlier(record, earlier)
        records.append(record)
        if on_record is not None:
            on_record(record)
    return ErasureReport(
        contract_id=contract_id,
        by=by,
        started_at=started,
        finished_at=datetime.now(UTC),
        records=records,
        kept=list(kept),
    )
