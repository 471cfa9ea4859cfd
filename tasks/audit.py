"""Audit checkpoints as Prefect tasks: signed, kept beside the log, and published outside it.

`anchor_audit` signs the audit log's head with the provider's signing key
(`handover.checklist.checkpoints`) and publishes the checkpoint twice
outside the contract's folder: the event `handover.audit.checkpoint`
(resource `handover.contract.<id>`) and a new version of the markdown
artifact `<contract>-audit-checkpoint`. Someone who deletes or rewrites the
log together with its checkpoints file still cannot change what the Prefect
server recorded.

`verify_audit` checks the whole trail (chain, checkpoints, checklists, see
`handover.checklist.trail`) against the playbook's own signing key, and the
log against the latest checkpoint the server holds; it raises
AuditTrailBroken listing every problem.

Payloads and artifacts carry seq, hash, time, reason, the signer's
fingerprint and the SHA-256 of the signature: nothing secret.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.events import emit_event
from prefect.events.filters import (
    EventFilter,
    EventNameFilter,
    EventOccurredFilter,
    EventResourceFilter,
)
from prefect.events.schemas.events import ResourceSpecification
from pydantic import BaseModel

from handover.actor import actor
from handover.checklist.checkpoints import Checkpoint, check_published
from handover.checklist.checkpoints import make_checkpoint as sign_head
from handover.checklist.store import ChecklistStore
from handover.checklist.trail import verify_trail
from handover.contract.keys import signing_key
from handover.contract.loader import load_playbook
from handover.errors import AuditTrailBroken
from handover.state.installation import installation_id

EVENT = "handover.audit.checkpoint"


class CheckpointSummary(BaseModel):
    """What a checkpoint vouches for, as flows and the UI see it (no key, no signature)."""

    contract: str
    seq: int
    hash: str
    at: str
    reason: str
    signer: str  # SHA256:... fingerprint of the provider's signing key
    signature_sha256: str
    artifact_key: str


def artifact_key(contract: str) -> str:
    """`<contract>-audit-checkpoint`: lowercase and dashes, as Prefect keys require."""
    return f"{contract}-audit-checkpoint".lower().replace("_", "-").replace(".", "-")


def resource_id(contract: str) -> str:
    return f"handover.contract.{contract}"


#: The resource label naming the installation that published a checkpoint.
INSTALLATION_LABEL = "handover.installation"


def checkpoint_resource(contract: str) -> dict[str, str]:
    """The event's resource: the contract, labelled with this installation's id.

    Contract ids are chosen by people and may repeat across installations
    sharing one server; the label keeps `latest_published` to our own.
    """
    return {
        "prefect.resource.id": resource_id(contract),
        "prefect.resource.name": contract,
        INSTALLATION_LABEL: installation_id(),
    }


@task(cache_policy=NO_CACHE, task_run_name="audit checkpoint: {reason}")
def anchor_audit(playbook_path: str, reason: str) -> CheckpointSummary:
    """Sign the audit log's head, keep the checkpoint, publish it as an event and an artifact."""
    playbook = load_playbook(Path(playbook_path))
    contract = playbook.contract_id
    store = ChecklistStore()
    checkpoint = sign_head(
        store.audit_log(contract),
        signing_key(playbook),
        reason,
        contract=contract,
        checkpoints=store.checkpoints(contract),
        actor=actor(),
    )
    summary = CheckpointSummary(
        **checkpoint.model_dump(include={"contract", "seq", "hash", "at", "reason", "signer"}),
        signature_sha256=checkpoint.signature_sha256,
        artifact_key=artifact_key(contract),
    )
    create_markdown_artifact(
        _markdown(checkpoint),
        key=summary.artifact_key,
        description=f"**{contract}**: audit log signed at seq {checkpoint.seq} ({reason})",
    )
    emit_event(
        EVENT,
        resource=checkpoint_resource(contract),
        payload=summary.model_dump(exclude={"artifact_key"}),
    )
    return summary


@task(cache_policy=NO_CACHE, task_run_name="verify audit trail")
def verify_audit(playbook_path: str) -> None:
    """Raise AuditTrailBroken unless chain, checkpoints, checklists and the server agree."""
    playbook = load_playbook(Path(playbook_path))
    contract = playbook.contract_id
    store = ChecklistStore()
    key = signing_key(playbook)
    report = verify_trail(
        store, contract, key.public_line(), "the playbook's signing key (reversibility)"
    )
    problems = list(report.problems)
    published = latest_published(contract)
    if published is not None:
        when = str(published.get("at", "?"))
        problems += check_published(
            report.log,
            int(published.get("seq", 0)),
            str(published.get("hash", "")),
            f"the checkpoint of {when} published to Prefect",
        )
    if problems:
        raise AuditTrailBroken(str(report.log.path), problems)
    latest = report.checkpoint_check.latest
    get_run_logger().info(
        "%s: audit trail intact (%d entries; latest %s, seq %s; %d entries after it)",
        contract,
        report.entries,
        latest.label() if latest else "no checkpoint",
        latest.seq if latest else "-",
        report.checkpoint_check.unsigned_after,
    )


def latest_published(contract: str) -> dict[str, Any] | None:
    """The payload of the newest `handover.audit.checkpoint` event of `contract`, if any.

    Only this installation's (see `checkpoint_resource`): a checkpoint another
    installation published for a contract of the same id says nothing of ours.

    The server persists events in batches, so one emitted a moment ago may
    not be there yet: this checks against the newest one it holds.
    """
    event_filter = EventFilter(
        occurred=EventOccurredFilter.model_validate({"since": "2000-01-01T00:00:00Z"}),
        event=EventNameFilter(name=[EVENT]),
        resource=EventResourceFilter(
            id=[resource_id(contract)],
            labels=ResourceSpecification({INSTALLATION_LABEL: installation_id()}),
        ),
    )
    with get_client(sync_client=True) as client:
        page = client.read_events(filter=event_filter, limit=1)
    if not page.events:
        return None
    return dict(page.events[0].payload)


def _markdown(checkpoint: Checkpoint) -> str:
    return "\n".join(
        [
            f"# Audit checkpoint: {checkpoint.contract}",
            "",
            "| field | value |",
            "|---|---|",
            f"| reason | {checkpoint.reason} |",
            f"| signed at | {checkpoint.at} |",
            f"| seq | {checkpoint.seq} |",
            f"| hash | `{checkpoint.hash}` |",
            f"| signer | `{checkpoint.signer}` |",
            f"| signature SHA-256 | `{checkpoint.signature_sha256}` |",
            "",
            "The audit log must still hold entry "
            f"{checkpoint.seq} with this hash: `handover audit CONTRACT --verify` checks it.",
        ]
    )
