"""Erasure of the provider's copies after the client's acceptance, with a signed certificate.

What is erased: the provider's working copies of the contract's data under
its contract folder (baseline snapshots, inventories, collected
documentation, drill leftovers, bundle working copies, the exported
credentials), the backups (folder or S3 prefix), the S3 delivery prefix once
the client has accepted, and the vault. What is kept: the checklists and the
hash-chained audit log (evidence of how the contract was performed) and the
categories the playbook exempts by law, all listed on the certificate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict

from handover.actor import actor
from handover.checklist.store import ChecklistStore
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.errors import HandoverError
from handover.exit.erasure import (
    DeletionResult,
    ErasureRecord,
    ErasureTarget,
    erase_contract_copies,
    path_target,
    s3_target,
    vault_target,
)
from handover.exit.erasure_certificate import erasure_certificate, sign_certificate
from handover.secrets.vault import Vault
from handover.state.home import contract_dir
from tasks.bundle import Delivery, LinkDelivery
from tasks.keys import signing_key

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

WORKING_COPIES = {
    "bundles": "bundle working copies",
    "drill": "reversibility drill leftovers",
    "reversibility/private": "exported credentials (KDBX) and its encrypted password",
    "takeover/baseline": "baseline snapshots (file lists with hashes)",
    "takeover/inventory": "host inventories (takeover)",
    "takeover/documentation": "documentation collected at takeover",
    "reversibility/inventory": "host inventories (exit)",
}


class SignedErasure(BaseModel):
    """The erasure certificate, its SSH signature and what it records (no secret)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    certificate: str  # Markdown, delivered beside the bundle
    signature: str  # ssh-keygen -Y sign armor, namespace handover-erasure
    certificate_sha256: str
    provider_key: str  # the public line that verifies the signature
    records: list[ErasureRecord]


def _s3_prefix_deleter(playbook: Playbook, url: str) -> Callable[[], DeletionResult]:
    from handover.connectors.s3 import parse_s3_url, s3_client

    bucket, prefix = parse_s3_url(url)

    def delete() -> DeletionResult:
        client = s3_client(playbook.perimeter.s3)
        objects = size = 0
        paginator = client.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            batch: list[ObjectIdentifierTypeDef] = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            size += sum(int(v.get("Size", 0)) for v in page.get("Versions", []))
            for start in range(0, len(batch), 1000):
                client.delete_objects(
                    Bucket=bucket, Delete={"Objects": batch[start : start + 1000], "Quiet": True}
                )
            objects += len(page.get("Versions", []))
        return DeletionResult(objects, size)

    return delete


def erasure_targets(playbook: Playbook, delivery: Delivery) -> list[ErasureTarget]:
    root = contract_dir(playbook.contract_id)
    targets = [path_target("local", root / rel, what) for rel, what in WORKING_COPIES.items()]
    if playbook.backups is not None:
        target = playbook.backups.target
        if target.startswith("s3://"):
            url = f"{target.rstrip('/')}/{playbook.contract_id}/"
            targets.append(s3_target(url, _s3_prefix_deleter(playbook, url), "backups"))
        else:
            folder = Path(target).absolute() / playbook.contract_id
            targets.append(path_target("backups", folder, "backups"))
    if isinstance(delivery, LinkDelivery):
        url = delivery.location
        targets.append(
            s3_target(url, _s3_prefix_deleter(playbook, url), "bundle in the provider's bucket")
        )
    targets.append(vault_target(Vault(playbook.contract_id).path))
    return targets


def erase_and_certify(playbook: Playbook, bundle_name: str, delivery: Delivery) -> SignedErasure:
    report = erase_contract_copies(
        playbook.contract_id, erasure_targets(playbook, delivery), actor=actor()
    )
    text = erasure_certificate(report, playbook)
    key = signing_key(playbook)
    signature = sign_certificate(text, key)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    ChecklistStore().audit_log(playbook.contract_id).append(
        "erasure.certificate",
        actor(),
        bundle=bundle_name,
        certificate_sha256=digest,
        complete=report.complete,
        targets=[
            {"location": r.location, "status": r.status, "objects": r.objects}
            for r in report.records
        ],
    )
    if not report.complete:
        raise HandoverError("erasure incomplete: " + "; ".join(report.problems()))
    return SignedErasure(
        certificate=text,
        signature=signature,
        certificate_sha256=digest,
        provider_key=key.public_line("provider"),
        records=report.records,
    )


@task(cache_policy=NO_CACHE, task_run_name="erase provider copies")
def erase_copies(playbook_path: str, bundle_name: str, delivery: Delivery) -> SignedErasure:
    """Delete the provider's copies of the contract's data; return the signed certificate."""
    playbook = load_playbook(Path(playbook_path))
    return erase_and_certify(playbook, bundle_name, delivery)
