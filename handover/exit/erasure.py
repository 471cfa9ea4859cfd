"""Erasure of the provider's copies after the client's acceptance: what is deleted, and the report.

Once the client has accepted the restitution bundle, the provider deletes
what it still holds of the contract (local store folders, backups, S3
prefixes, the vault file). `erase_contract_copies` deletes every target,
never stopping at the first failure, and returns an `ErasureReport` saying
what was erased, where, how, when and by whom; the signed certificate made
from it is `handover.exit.erasure_certificate`.

Deletion is the file system's `unlink` (and S3 `DeleteObjects`): it removes
the data from the provider's systems as far as the provider controls them;
it does not overwrite storage blocks, and the certificate says so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from handover.actor import actor as default_actor
from handover.state.home import handover_home

TargetKind = Literal["local", "backups", "vault", "s3", "other"]
Status = Literal["erased", "absent", "failed", "refused"]


@dataclass(frozen=True)
class DeletionResult:
    """What a deleter callable reports: objects and bytes removed (bytes 0 when unknown)."""

    objects: int
    bytes: int = 0


@dataclass(frozen=True)
class ErasureTarget:
    """One copy to erase. Local kinds name a path; `s3`/`other` need a `delete` callable.

    `delete` (for S3: a function of the caller's that deletes every object and
    version under the prefix and returns a DeletionResult) keeps this module
    free of boto3.
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
    """The contract's vault file (its lock file goes with it)."""
    return ErasureTarget("vault", str(vault_path.absolute()), "credential vault")


def s3_target(
    url: str,
    delete: Callable[[], DeletionResult],
    description: str = "",
    method: str = "S3 DeleteObjects (every object version under the prefix)",
) -> ErasureTarget:
    return ErasureTarget("s3", url, description, method, delete)


class ErasureRecord(BaseModel):
    """What happened to one target (evidence line of the certificate)."""

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


class ErasureReport(BaseModel):
    contract_id: str
    by: str
    started_at: datetime
    finished_at: datetime
    records: list[ErasureRecord]

    @property
    def complete(self) -> bool:
        """True when every target is erased or was already absent."""
        return all(r.status in ("erased", "absent") for r in self.records)

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


def _measure(path: Path) -> tuple[int, int]:
    if path.is_symlink() or path.is_file():
        return 1, path.lstat().st_size
    files = size = 0
    for folder, dirs, names in os.walk(path):
        for name in names + [d for d in dirs if (Path(folder) / d).is_symlink()]:
            files += 1
            with contextlib.suppress(OSError):
                size += (Path(folder) / name).lstat().st_size
    return files, size


def _erase_path(target: ErasureTarget) -> tuple[Status, int, int, str, str]:
    path = Path(target.location)
    if not path.is_absolute():
        return "refused", 0, 0, "", "not an absolute path"
    reason = _forbidden(path)
    if reason:
        return "refused", 0, 0, "", reason
    if not path.exists() and not path.is_symlink():
        return "absent", 0, 0, "none (already absent)", ""
    objects, size = _measure(path)
    if path.is_symlink() or path.is_file():
        method = "unlink"
        path.unlink()
        if target.kind == "vault":
            with contextlib.suppress(FileNotFoundError):
                path.with_name(path.name + ".lock").unlink()
    else:
        method = "recursive unlink (rmtree, symlinks not followed)"
        shutil.rmtree(path)
    if path.exists() or path.is_symlink():
        return "failed", objects, size, method, "still present after deletion"
    return "erased", objects, size, method, ""


def erase_contract_copies(
    contract_id: str, targets: list[ErasureTarget], *, actor: str | None = None
) -> ErasureReport:
    """Delete every target and record what happened; never stops at the first failure.

    A target that fails (or is refused: `/`, the home folder, the working
    folder, `.handover/` itself or one of their parents) is recorded with its
    error, so the report and certificate show it; check `report.complete`.
    """
    by = actor or default_actor()
    started = datetime.now(UTC)
    records = [_erase_target(target, by) for target in targets]
    return ErasureReport(
        contract_id=contract_id,
        by=by,
        started_at=started,
        finished_at=datetime.now(UTC),
        records=records,
    )


def _erase_target(target: ErasureTarget, by: str) -> ErasureRecord:
    """Erase one target with its deleter or as a local path; a failure is recorded, not raised."""
    at = datetime.now(UTC)
    method = target.method
    try:
        if target.delete is not None:
            result = target.delete()
            status: Status = "erased"
            objects, size, error = result.objects, result.bytes, ""
            method = method or "caller-provided deletion"
        elif target.kind in ("local", "backups", "vault"):
            status, objects, size, used, error = _erase_path(target)
            method = method or used
        else:
            status, objects, size = "refused", 0, 0
            error = f"a {target.kind} target needs a delete callable"
    except Exception as exc:  # recorded, not raised: the certificate must show failures
        status, objects, size = "failed", 0, 0
        error = f"{type(exc).__name__}: {exc}"
    return ErasureRecord(
        kind=target.kind,
        location=target.location,
        description=target.description,
        method=method,
        status=status,
        objects=objects,
        bytes=size,
        at=at,
        by=by,
        error=error,
    )
