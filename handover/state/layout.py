"""The map of a contract's folder: every path handover keeps under `.handover/contracts/<id>/`.

Writers and readers take their paths from here, and the erasure takes its
list of the provider's working copies from here too (`working_copies`), so a
folder of client data cannot be written without the erasure knowing it.
Evidence files that one checklist step writes and nobody reads again are
named by that step, inside its phase folder (`phase_dir`).

Phase folders are named by the phase's value (`handover.phases`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from handover.phases import Phase
from handover.state.atomic import ensure_private_dir
from handover.state.home import contract_dir


@dataclass(frozen=True)
class ContractPaths:
    """The paths of one contract's folder, named after what they hold."""

    contract_id: str
    contracts_root: Path | None = None  # where contract folders live; default: the home's

    @property
    def root(self) -> Path:
        """The contract's folder (created on first use)."""
        if self.contracts_root is None:
            return contract_dir(self.contract_id)
        return ensure_private_dir(self.contracts_root / self.contract_id)

    # -- evidence of how the contract was performed (kept by the erasure) -----------------

    @property
    def checklists_dir(self) -> Path:
        return self.root / "checklists"

    def checklist_file(self, phase: Phase | str) -> Path:
        return self.checklists_dir / f"{phase}.json"

    @property
    def audit_log(self) -> Path:
        """The hash-chained audit log of every checklist change."""
        return self.root / "audit.log"

    @property
    def audit_checkpoints(self) -> Path:
        """The signed checkpoints of the audit log's head, kept outside the log (JSON Lines)."""
        return self.root / "audit-checkpoints.jsonl"

    def phase_dir(self, phase: Phase | str) -> Path:
        """The evidence files a phase's flow writes (one folder per phase)."""
        return self.root / phase

    def documents_dir(self, phase: Phase | str) -> Path:
        """The reports of a phase (Markdown and HTML), handed to the client at exit."""
        return self.phase_dir(phase) / "documents"

    @property
    def health_record(self) -> Path:
        """The latest health checks of the operational run."""
        return self.phase_dir(Phase.OPERATIONAL) / "health" / "latest.json"

    @property
    def incidents_measured(self) -> Path:
        """The recorded incidents, measured against the SLA by the operational run."""
        return self.phase_dir(Phase.OPERATIONAL) / "incidents.json"

    @property
    def delivery_record(self) -> Path:
        """Where and how the restitution bundle was delivered."""
        return self.phase_dir(Phase.REVERSIBILITY) / "delivery.json"

    # -- inputs and trust ---------------------------------------------------------------

    @property
    def incidents_file(self) -> Path:
        """The incidents the operations team records (`handover.operations.incidents`)."""
        return self.root / "incidents.json"

    @property
    def known_hosts(self) -> Path:
        """The SSH host keys the contract trusts (OpenSSH format)."""
        return self.root / "known_hosts"

    @property
    def vault_file(self) -> Path:
        """The contract's credential vault (age-encrypted)."""
        return self.root / "vault.age"

    # -- the provider's working copies of client data (deleted by the erasure) -----------

    @property
    def bundles_dir(self) -> Path:
        return self.root / "bundles"

    def bundle_work_dir(self, bundle_name: str) -> Path:
        """Where a bundle delivered to a folder is sealed before it is copied there."""
        return self.bundles_dir / bundle_name

    @property
    def drill_dir(self) -> Path:
        """The reversibility drill's sandboxes (removed after each drill)."""
        return self.root / "drill"

    @property
    def private_exports_dir(self) -> Path:
        return self.phase_dir(Phase.REVERSIBILITY) / "private"

    def credentials_export_dir(self, bundle_name: str) -> Path:
        """The exported KDBX and its encrypted password, for one bundle."""
        return self.private_exports_dir / bundle_name

    @property
    def baselines_dir(self) -> Path:
        """The takeover baseline: each dataset's file list with hashes."""
        return self.phase_dir(Phase.TAKEOVER) / "baseline"

    def inventories_dir(self, phase: Phase | str) -> Path:
        """The host inventories taken in a phase (takeover, and the final one at exit)."""
        return self.phase_dir(phase) / "inventory"

    @property
    def documentation_dir(self) -> Path:
        """The documentation collected at takeover (the playbook, what the hosts say)."""
        return self.phase_dir(Phase.TAKEOVER) / "documentation"

    @property
    def client_documents_dir(self) -> Path:
        """The client's own documents collected at takeover, one folder per source, indexed."""
        return self.phase_dir(Phase.TAKEOVER) / "client-documents"

    def working_copies(self) -> list[tuple[Path, str]]:
        """The folders holding the provider's copies of client data, with what each holds.

        The vault (`vault_file`) is erased apart, as the vault it is; the
        checklists, the audit log and the phases' other evidence are kept.
        """
        return [
            (self.bundles_dir, "bundle working copies"),
            (self.drill_dir, "reversibility drill leftovers"),
            (
                self.private_exports_dir,
                "exported credentials (KDBX) and its encrypted password",
            ),
            (self.baselines_dir, "baseline snapshots (file lists with hashes)"),
            (self.inventories_dir(Phase.TAKEOVER), "host inventories (takeover)"),
            (self.documentation_dir, "documentation collected at takeover"),
            (self.client_documents_dir, "client documents collected at takeover"),
            (self.inventories_dir(Phase.REVERSIBILITY), "host inventories (exit)"),
        ]
