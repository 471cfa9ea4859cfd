"""What the erasure deletes for one contract, and what the provider keeps, each with where.

Deleted (`erasure_targets`): the provider's working copies from the map of
the contract's folder (`ContractPaths.working_copies`), so the erasure
deletes what the writers wrote there; then the backups (a folder, or an S3
prefix with every object version), the bundle in the provider's bucket when
it was handed over by links, and the vault, last.

Kept (`kept_records`): the playbook's exempted categories (with their
reason and legal basis), and the provider's own records of how the contract
was performed, each with its location: the checklists, the hash-chained
audit log, each phase's reports and evidence files, the incidents file, the
trusted host keys, the Prefect run history, and anything else found in the
contract's folder, so the certificate never keeps something silently.

Everything the S3 deletions need is loaded here, before anything is
deleted: the S3 clients are made (their credentials resolved, possibly from
the vault that goes last) when the targets are listed. A client that cannot
be made fails its target with the reason, and nothing is deleted under it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from handover.exit.erasure import (
    DeletionResult,
    ErasureTarget,
    KeptRecord,
    path_target,
    reason,
    s3_target,
    vault_target,
)
from handover.operations.backup_target import contract_backups
from handover.phases import PHASES
from handover.state.home import EVIDENCE_URL_ENV
from handover.state.layout import ContractPaths
from handover.state.store import state_url

if TYPE_CHECKING:
    from handover.connectors.s3.client import S3SettingsLike
    from handover.contract.playbook import Playbook
    from handover.contract.reversibility import Exemption

EVIDENCE = "evidence of how the contract was performed (the provider's own record)"


def erasure_targets(
    playbook: Playbook, delivered: str | Sequence[str] | None
) -> list[ErasureTarget]:
    """The contract's copies, in the order of deletion (the vault last).

    `delivered`: the `s3://bucket/prefix` of each bundle handed over by
    links, one per delivery when reservations brought a corrected one (None
    or empty when delivered to a folder: the client's copy is not the
    provider's to erase).
    """
    prefixes = [delivered] if isinstance(delivered, str) else list(delivered or ())
    paths = ContractPaths(playbook.contract_id)
    targets = [path_target("local", folder, what) for folder, what in paths.working_copies()]
    s3 = playbook.perimeter.s3
    if playbook.backups is not None:
        backups = contract_backups(playbook.backups.target, playbook.contract_id)
        if isinstance(backups, Path):
            targets.append(path_target("backups", backups, "backups"))
        else:
            targets.append(s3_target(backups, s3_prefix_deleter(s3, backups), "backups"))
    for prefix in dict.fromkeys(prefixes):
        deleter = s3_prefix_deleter(s3, prefix)
        targets.append(s3_target(prefix, deleter, "bundle in the provider's bucket"))
    targets += evidence_store_targets(paths)
    targets.append(vault_target(paths.vault_file))
    return targets


def evidence_store_targets(paths: ContractPaths) -> list[ErasureTarget]:
    """With an S3 evidence store: its copies of the working copies, and other workers' copies.

    The store's objects are deleted (every version) for the working copies and
    for anything the kept evidence does not reference (an upload a killed
    run never indexed). Each worker removes its own local copies of client
    data when its run of the contract ends; a worker the index still names
    as a holder (a run there now, or one killed with -9) may keep some, and
    the certificate says so, by worker, rather than claim them gone.
    """
    from handover.evidence import evidence_mirror

    mirror = evidence_mirror(paths.contract_id, paths.root)
    if mirror is None:
        return []
    root = paths.root
    relpaths = [folder.relative_to(root).as_posix() for folder, _ in paths.working_copies()]

    def delete_objects() -> DeletionResult:
        erased = mirror.erase(relpaths)
        return DeletionResult(
            erased.deleted,
            found=erased.deleted + len(erased.failed),
            remaining=len(erased.failed),
            error=f"{len(erased.failed)} object(s) not deleted: {erased.failed[0]}"
            if erased.failed
            else "",
        )

    def other_workers() -> DeletionResult:
        others = {
            worker: held for worker, held in mirror.holders().items() if worker != mirror.worker
        }
        if not others:
            return DeletionResult(0, found=0)
        named = "; ".join(
            f"{worker} (run {held.get('run', '?')}, since {held.get('since', '?')})"
            for worker, held in sorted(others.items())
        )
        return DeletionResult(
            0,
            found=len(others),
            remaining=len(others),
            error=f"copies of client data may remain on {named}: the next run of this "
            "contract there removes them",
        )

    return [
        ErasureTarget(
            "s3",
            f"{mirror.where}objects/",
            "working copies of client data in the evidence store, and objects no kept "
            "evidence references",
            "S3 DeleteObjects (every version); their entries removed from the evidence index",
            delete_objects,
        ),
        ErasureTarget(
            "other",
            "other workers' copies of the contract's folder",
            "local copies of client data on the team's other workers",
            "each worker removes its copies when its run of the contract ends; checked "
            "against the evidence index's holders",
            other_workers,
        ),
    ]


def s3_prefix_deleter(settings: S3SettingsLike | None, url: str) -> Callable[[], DeletionResult]:
    """Delete every version under `url` when called; the client is made now, before any deletion.

    The result counts what listing the prefix again shows gone; the versions
    S3 refused (per-key `Errors` of DeleteObjects) and anything still listed
    fail the target, with counts and S3's error codes, never a key. A client
    that cannot be made now (credentials that do not resolve) makes the
    deleter raise that reason when called.
    """
    from handover.connectors.s3.client import parse_s3_url, s3_client
    from handover.connectors.s3.deletion import delete_prefix, failure_summary
    from handover.errors import HandoverError

    bucket, prefix = parse_s3_url(url)
    try:
        client = s3_client(settings)
    except HandoverError as exc:
        unavailable = f"no S3 client, nothing deleted: {reason(exc)}"

        def cannot_delete() -> DeletionResult:
            raise HandoverError(unavailable)

        return cannot_delete

    def delete() -> DeletionResult:
        counts = delete_prefix(client, bucket, prefix)
        remaining = max(counts.remaining_versions, counts.remaining_objects)
        return DeletionResult(
            counts.objects,
            counts.bytes,
            found=counts.found,
            remaining=remaining,
            error=failure_summary(counts.failed) if counts.failed else "",
        )

    return delete


def kept_records(playbook: Playbook, erased: Sequence[str] = ()) -> list[KeptRecord]:
    """What the provider keeps after the erasure, with where and why (see the module docstring).

    `erased`: the targets' locations, never listed as kept. Folders and files
    are listed when they exist; the exempted categories and the Prefect run
    history always.
    """
    kept = [_exempted(item) for item in playbook.reversibility.exempted]
    paths = ContractPaths(playbook.contract_id)
    skip = {str(Path(location).absolute()) for location in erased}
    known: list[tuple[Path, str]] = [
        (paths.checklists_dir, "the contract's checklists (each item's status and evidence)"),
        (paths.audit_log, "the hash-chained audit log of every checklist change"),
    ]
    for phase in PHASES:
        known.append((paths.documents_dir(phase), f"the {phase} phase's reports"))
        known.append(
            (
                paths.phase_dir(phase),
                f"the {phase} phase's evidence files (the working copies inside it are "
                "erased, listed above)",
            )
        )
    known += [
        (paths.incidents_file, "the incidents recorded during the contract"),
        (paths.known_hosts, "the SSH host keys the provider trusted"),
    ]
    listed = set(skip)
    for path, what in known:
        listed.add(str(path))
        if path.exists() and str(path) not in skip:
            kept.append(KeptRecord(kind="evidence", what=what, where=str(path), reason=EVIDENCE))
    kept.append(
        KeptRecord(
            kind="evidence",
            what="the Prefect run history (flow and task runs of this contract, their logs "
            "and artifacts)",
            where=_prefect_location(),
            reason=EVIDENCE,
        )
    )
    evidence = _evidence_store()
    if evidence is not None:
        kept.append(
            KeptRecord(
                kind="evidence",
                what="the contract's evidence files and reports (the working copies in it are "
                "erased, listed above), and their index",  # as in handover.i18n.words
                where=evidence,
                reason=EVIDENCE,
            )
        )
    database = _state_database()
    if database is not None:
        kept.append(
            KeptRecord(kind="evidence", what=STATE_DATABASE, where=database, reason=EVIDENCE)
        )
    kept += _others(paths.root, listed)
    return kept


#: What a team's state database keeps of the contract after the erasure (its vault row is
#: one of the erasure's targets): said, so the certificate never lists less than is kept.
STATE_DATABASE = (
    "the contract's checklists, audit log, signed checkpoints, journals and trusted SSH host "
    "keys, in the team's state database"
)


def _state_database() -> str | None:
    """`PostgreSQL scheme://user@host:port/db` when the state is in a database (no password)."""
    url = state_url()
    if url.kind != "postgresql" or not url.url:
        return None
    parts = urlsplit(url.url)
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"PostgreSQL {parts.scheme}://{user}{parts.hostname or ''}{port}{parts.path}"


def _evidence_store() -> str | None:
    """`s3://bucket/prefix/` when the evidence is mirrored to S3 (`HANDOVER_EVIDENCE_URL`)."""
    value = os.environ.get(EVIDENCE_URL_ENV, "").strip()
    return value if value.startswith("s3://") else None


def _exempted(item: Exemption) -> KeptRecord:
    basis = item.legal_basis or ""
    return KeptRecord(
        kind="legal-retention" if basis else "exempted",
        what=item.category,
        where="",
        reason=item.reason,
        basis=basis,
    )


def _others(root: Path, listed: set[str]) -> list[KeptRecord]:
    """Entries of the contract's folder neither erased nor known: kept, and said so."""
    others = []
    for entry in sorted(root.iterdir()):
        if str(entry) in listed or entry.name.endswith(".lock"):
            continue
        others.append(
            KeptRecord(
                kind="evidence",
                what="another record of the contract's folder",
                where=str(entry),
                reason="not one of the working copies the erasure deletes; kept with the "
                "contract's records",
            )
        )
    return others


def _prefect_location() -> str:
    """The Prefect server the runs are recorded on, as scheme://host:port (never credentials)."""
    url = os.environ.get("PREFECT_API_URL", "")
    parts = urlsplit(url)
    if parts.scheme and parts.hostname:
        port = f":{parts.port}" if parts.port else ""
        return f"Prefect server {parts.scheme}://{parts.hostname}{port}"
    return "the Prefect server the flows ran on"
