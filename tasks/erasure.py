"""Erasure of the provider's copies after the client's acceptance, with a signed certificate.

What is erased: the provider's working copies of the contract's data under
its contract folder (baseline snapshots, inventories, collected
documentation, drill leftovers, bundle working copies, the exported
credentials), the backups (folder or S3 prefix), the S3 delivery prefix once
the client has accepted, and the vault (`handover.exit.erasure_targets`).
What is kept: the checklists and the hash-chained audit log (evidence of how
the contract was performed) and the categories the playbook exempts by law,
all listed on the certificate (`handover.exit.erasure_certificate`).
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from handover.contract.loader import load_playbook
from handover.exit.delivery import DeliveryRecord, LinkDelivery
from handover.exit.erasure_certificate import SignedErasure, erase_and_certify
from handover.exit.erasure_targets import erasure_targets


@task(cache_policy=NO_CACHE, task_run_name="erase provider copies")
def erase_copies(playbook_path: str, bundle_name: str, delivery: DeliveryRecord) -> SignedErasure:
    """Delete the provider's copies of the contract's data; return the signed certificate."""
    playbook = load_playbook(Path(playbook_path))
    delivered_prefix = delivery.location if isinstance(delivery, LinkDelivery) else None
    return erase_and_certify(playbook, bundle_name, erasure_targets(playbook, delivered_prefix))
