"""Erasure of the provider's copies after the client's acceptance, with a signed certificate.

What is erased: the provider's working copies of the contract's data under
its contract folder (baseline snapshots, inventories, collected
documentation, drill leftovers, bundle working copies, the exported
credentials), the backups (folder or S3 prefix), the S3 delivery prefix once
the client has accepted, and the vault, last (`handover.exit.erasure_targets`).
Every deletion is checked afterwards. What is kept: the playbook's exempted
categories, and the checklists, the hash-chained audit log, the reports and
the run history (evidence of how the contract was performed), all listed
with where and why on the certificate (`handover.exit.erasure_certificate`).

The targets are listed here, before the erasure starts, so the S3 clients
(and their credentials, which may live in the vault) are made before
anything is deleted. An incomplete erasure returns its certificate with
`complete` False and the `remaining` locations: the flow keeps the
certificate as evidence, then fails the item. Rerunning after a crash is
safe: what is already gone counts as absent.
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
def erase_copies(
    playbook_path: str, bundle_name: str, deliveries: list[DeliveryRecord]
) -> SignedErasure:
    """Delete and check the provider's copies of the contract's data; the signed certificate.

    `deliveries`: every delivery of the exit, the ones replaced after
    reservations included (each S3 delivery left a prefix in the provider's
    bucket). Check `.complete` on the result: False means something meant to
    go remains (`.remaining`), and the certificate says `Result: incomplete`.
    """
    playbook = load_playbook(Path(playbook_path))
    prefixes = [d.location for d in deliveries if isinstance(d, LinkDelivery)]
    return erase_and_certify(playbook, bundle_name, erasure_targets(playbook, prefixes))
