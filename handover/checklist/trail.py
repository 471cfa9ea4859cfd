"""The whole audit trail of a contract checked at once: chain, signed checkpoints, checklists.

`handover audit --verify` and the task that verifies the trail before the
exit seals it ask the same three questions, so they share this one answer:

- is the hash chain of the log intact (`AuditLog.verify`, torn tail included)?
- does the log still hold what each signed checkpoint vouched for
  (`handover.checklist.checkpoints`)?
- do the checklists say what the log's last entry for each item says
  (`ChecklistStore.cross_check`)?

Which public key the checkpoints are checked against matters: the key the
checkpoints name themselves only proves that one key signed them all (an
attacker who rewrote the log could sign again with a key of their own), so
the report says where the key came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from handover.checklist.audit import AuditLog
from handover.checklist.checkpoints import (
    CheckpointCheck,
    check_checkpoints,
    self_asserted_key,
)
from handover.checklist.store import ChecklistStore

SELF_ASSERTED = (
    "self-asserted: the key the checkpoints name themselves; "
    "pass --signer provider.pub or --playbook FILE to check against the provider's key"
)


@dataclass
class TrailReport:
    """What checking one contract's audit trail found."""

    log: AuditLog
    entries: int
    key_source: str
    chain_problems: list[str] = field(default_factory=list)
    checkpoint_check: CheckpointCheck = field(default_factory=CheckpointCheck)
    checkpoint_file_problems: list[str] = field(default_factory=list)
    checklist_problems: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [
            *self.chain_problems,
            *self.checkpoint_file_problems,
            *self.checkpoint_check.problems,
            *self.checklist_problems,
        ]

    @property
    def intact(self) -> bool:
        return not self.problems


def verify_trail(
    store: ChecklistStore, contract: str, public_line: str | None, key_source: str
) -> TrailReport:
    """Check `contract`'s trail; `public_line` None means: trust the checkpoints' own key.

    `key_source` says where `public_line` came from, for the report.
    """
    log = store.audit_log(contract)
    checkpoints, unreadable = store.checkpoints(contract).read()
    if public_line is None:
        public_line, key_source = self_asserted_key(checkpoints) or "", SELF_ASSERTED
    return TrailReport(
        log=log,
        entries=len(log.readable_entries()),
        key_source=key_source,
        chain_problems=log.verify(),
        checkpoint_check=check_checkpoints(log, checkpoints, public_line, contract=contract),
        checkpoint_file_problems=unreadable,
        checklist_problems=store.cross_check(contract),
    )
