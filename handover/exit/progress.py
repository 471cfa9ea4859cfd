"""What an exit has produced so far, on disk as it is produced, so a crash loses nothing.

A reversibility run that dies (kill -9, power cut, a dead worker) must be
resumable by a plain rerun: same bundle, finished volumes adopted instead
of resealed, the delivery, the client's answer and the deadlines exactly as
they were recorded. Everything a later step needs is written here, each
piece atomically, the moment the step that made it finishes:

- `exit-state.json` in the reversibility folder: the bundle's name, the exit
  calendar, the documents to seal, the sealed bundle's summary, the
  delivery, the acceptance, the revocations, the erasure certificate. It
  holds no client file names (summaries only), so it may be shown.
- one `<dataset>.json` per finished volume, beside the bundle's working copy
  (`bundles/<name>.volumes/`): the writer's full `VolumeRecord`, member names
  included, which is why it lives with the working copies that the erasure
  deletes and never in the phase's evidence.

A volume file exists under its final name only once complete (the writer
renames it into place) and its record is written after that: a crash in
between leaves a volume without a record, which the rerun reseals. A record
whose volume is missing or of another size is ignored the same way.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from handover.bundle.manifest import VolumeRecord, utf8_batches
from handover.bundle.summary import SealedBundle
from handover.contract.deadlines import ExitDeadlines
from handover.errors import HandoverError
from handover.estate.provider_access import ProviderAccessRevoked
from handover.exit.acceptance import Decision
from handover.exit.delivery import FolderDelivery, LinkDelivery
from handover.exit.erasure_certificate import SignedErasure
from handover.phases import Phase
from handover.state.atomic import atomic_writer, write_atomic
from handover.state.layout import ContractPaths

STATE_NAME = "exit-state.json"


class AcceptanceRecord(BaseModel):
    """The client's answer as the checklist evidence and the exit report keep it.

    Since answers are signed statements (`handover.exit.acceptance`), the
    record keeps the decision, the signer's key fingerprint and the statement
    and signature texts themselves, so the exit documents can show what was
    signed and anyone can check it again with `ssh-keygen -Y verify`.
    `accepted` is True only for the decision `accepted`: it is what the
    one-way doors read. Records written before signed answers have no
    `decision` (None) and empty signature fields.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    accepted: bool
    accepted_by: str  # the signatory named in the statement
    comment: str  # the reservations (or the reason of a refusal)
    at: str  # ISO 8601, UTC: when the flow received and checked the answer
    # The client asks for its data to be erased before the end of the retrieval period.
    early_erasure: bool = False
    decision: Decision | None = None
    reservations: str = ""
    signer_principal: str = ""  # the allowed signer's principal(s)
    signer_fingerprint: str = ""  # SHA256:... of the client key that signed
    statement_sha256: str = ""
    statement: str = ""  # the statement as signed
    signature: str = ""  # its armored SSH signature (namespace handover-acceptance)

    @model_validator(mode="after")
    def _accepted_means_accepted(self) -> Self:
        if self.decision is not None and self.accepted != (self.decision == "accepted"):
            raise ValueError(f"accepted must be {self.decision == 'accepted'} for {self.decision}")
        return self


Delivery = Annotated[FolderDelivery | LinkDelivery, Field(discriminator="kind")]


class Correction(BaseModel):
    """What the provider corrected after the client's reservations (declared in the pause form)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    corrected_by: str
    corrections: str
    at: str  # ISO 8601, UTC


class Redelivery(BaseModel):
    """A delivery the client accepted with reservations, superseded by a corrected one.

    Kept whole (bundle, delivery, the signed statement with its reservations,
    the correction declared) so the exit record shows every delivery the
    client received and why each was replaced, and so the erasure finds every
    copy the provider made (an S3 delivery leaves one prefix per revision).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    revision: int  # 1 for the first delivery
    bundle_name: str
    sealed: SealedBundle
    delivery: Delivery
    acceptance: AcceptanceRecord
    correction: Correction


class ExitState(BaseModel):
    """The exit so far: each field is set by one step and read by the later ones."""

    model_config = ConfigDict(extra="forbid")

    bundle_name: str
    deadlines: ExitDeadlines | None = None
    # How each calendar wait ended (date reached, or continued early and why), by wait.
    waits: dict[str, str] = {}
    documents: dict[str, str] = {}  # index name -> provider-side file to seal
    password_file: str | None = None  # the KDBX password, encrypted to the client
    sealed: SealedBundle | None = None
    delivery: Delivery | None = None
    acceptance: AcceptanceRecord | None = None
    revocations: list[ProviderAccessRevoked] = []
    erasure: SignedErasure | None = None
    # Deliveries accepted with reservations and replaced, oldest first.
    redeliveries: list[Redelivery] = []
    # The correction declared after reservations, until its re-delivery starts.
    correction: Correction | None = None
    # The re-delivery whose checklist items were reopened (a crash in between reopens them).
    reopened_for: int = 0

    @property
    def revision(self) -> int:
        """Which delivery this is: 1, then 2 after the first reservations, and so on."""
        return len(self.redeliveries) + 1

    def reservations_open(self) -> bool:
        """The current delivery was accepted with reservations and not yet replaced."""
        return (
            self.acceptance is not None
            and self.acceptance.decision == "accepted-with-reservations"
            and self.delivery is not None
        )

    def supersede(self) -> Self:
        """The state of the corrected re-delivery: the current delivery moves to `redeliveries`.

        The next bundle is named after the first one with `-r<revision>`, so
        its working copy, its volumes and its delivery never mix with the
        one the client already has. Requires reservations and a correction.
        """
        if not self.reservations_open() or self.correction is None:
            raise HandoverError("no reservations with a declared correction: nothing to re-deliver")
        assert self.sealed is not None and self.delivery is not None and self.acceptance
        replaced = Redelivery(
            revision=self.revision,
            bundle_name=self.bundle_name,
            sealed=self.sealed,
            delivery=self.delivery,
            acceptance=self.acceptance,
            correction=self.correction,
        )
        first = self.redeliveries[0].bundle_name if self.redeliveries else self.bundle_name
        return self.model_copy(
            update={
                "redeliveries": [*self.redeliveries, replaced],
                "bundle_name": f"{first}-r{self.revision + 1}",
                "sealed": None,
                "delivery": None,
                "acceptance": None,
                "password_file": None,
                "correction": None,
            }
        )


class ExitProgress:
    """Reads and writes one contract's exit state; safe to use from the flow's task threads."""

    def __init__(self, contract: str, root: Path | None = None) -> None:
        self.paths = ContractPaths(contract, root)
        self.file = self.paths.phase_dir(Phase.REVERSIBILITY) / STATE_NAME
        self._lock = threading.Lock()

    def load(self) -> ExitState | None:
        """The recorded state, None when no exit was started; HandoverError if it is damaged."""
        try:
            data = self.file.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return ExitState.model_validate_json(data)
        except ValidationError as exc:
            raise HandoverError(
                f"{self.file}: the recorded exit state is damaged ({exc.error_count()} "
                "problem(s)); restore it from backup or start the exit again with --fresh"
            ) from exc

    def save(self, state: ExitState) -> None:
        with self._lock:
            data = state.model_dump_json(indent=2, exclude_none=True) + "\n"
            write_atomic(self.file, data.encode("utf-8"))

    def start(self, bundle_name: str) -> ExitState:
        """A new exit state (a fresh exit), saved at once."""
        state = ExitState(bundle_name=bundle_name)
        self.save(state)
        return state

    def archive(self, state: ExitState) -> Path:
        """Keep an earlier exit's state beside, named after its bundle, before a new exit."""
        kept = self.file.with_name(f"exit-state-{state.bundle_name}.json")
        data = state.model_dump_json(indent=2, exclude_none=True) + "\n"
        write_atomic(kept, data.encode("utf-8"))
        return kept

    # -- volumes --------------------------------------------------------------------------

    def volumes_dir(self, bundle_name: str) -> Path:
        return self.paths.bundles_dir / f"{bundle_name}.volumes"

    def save_volume(self, bundle_name: str, dataset: str, record: VolumeRecord) -> None:
        """Record a finished volume (after its file is complete under its final name).

        Dataset names are playbook slugs, so they are file names as they are.
        """
        path = self.volumes_dir(bundle_name) / f"{dataset}.json"
        # Rendered from the packed members (pydantic's dump would build every record first)
        # and written as it is rendered, in batches: never the whole text at once.
        with atomic_writer(path) as handle:
            for batch in utf8_batches(record.json_chunks()):
                handle.write(batch)

    def forget_volume(self, bundle_name: str, dataset: str) -> None:
        path = self.volumes_dir(bundle_name) / f"{dataset}.json"
        path.unlink(missing_ok=True)

    def saved_volumes(self, bundle_name: str) -> dict[str, VolumeRecord]:
        """Finished volumes by dataset name; unreadable records are left out (resealed)."""
        folder = self.volumes_dir(bundle_name)
        records: dict[str, VolumeRecord] = {}
        if not folder.is_dir():
            return records
        for path in sorted(folder.glob("*.json")):
            try:
                # json.loads, not pydantic's parser: that one refuses the escaped names
                # (lone surrogates) of files whose names are not UTF-8 on disk.
                records[path.stem] = VolumeRecord.model_validate(json.loads(path.read_bytes()))
            except (OSError, ValidationError, json.JSONDecodeError):
                continue
        return records
