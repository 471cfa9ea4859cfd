"""`handover acceptance statement|submit`: the client's signed acceptance from the command line.

`statement` prints the text the client signs (`ssh-keygen -Y sign -n
handover-acceptance`), for the bundle the running exit delivered; `submit`
checks a signed pair exactly as the flow will (signer in
`reversibility.client_signers`, namespace, bundle, SHA256SUMS hash) and puts
it beside the delivery, where the waiting reversibility flow picks it up.
Checking before dropping tells the operator at once what is wrong, instead
of a rejection in the flow's audit log later.

The statement goes to stdout byte for byte (no wrapping, no colour), so
`> acceptance.txt` gives the exact text to sign.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from handover.cli import app, console, handles_errors
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.errors import UsageError
from handover.evidence import refresh_for_reading
from handover.exit.acceptance import (
    DECISIONS,
    MAX_SIGNATURE_BYTES,
    MAX_STATEMENT_BYTES,
    bundle_sums_sha256,
    playbook_signers,
    render_statement,
    statement_for,
    verify_statement,
)
from handover.exit.acceptance_drop import drop_location, drop_signed
from handover.exit.delivery import DeliveryRecord
from handover.exit.progress import ExitProgress
from handover.phases import Phase
from handover.state.atomic import write_atomic
from handover.state.layout import ContractPaths

acceptance_app = typer.Typer(
    name="acceptance",
    help="The client's signed acceptance of the restitution bundle (procès-verbal de réception).",
    no_args_is_help=True,
)
app.add_typer(acceptance_app, name="acceptance")


def _delivered(playbook: Playbook) -> tuple[str, DeliveryRecord, str]:
    """The delivered bundle's name, delivery and SHA256SUMS hash, from the exit state."""
    contract = playbook.contract_id
    refresh_for_reading(contract, ContractPaths(contract).root, [Phase.REVERSIBILITY.value])
    state = ExitProgress(contract).load()
    if state is None or state.sealed is None or state.delivery is None:
        raise UsageError(
            f"{playbook.contract_id}: no bundle delivered yet; the statement names the "
            "delivered bundle, so run the reversibility flow up to its delivery first"
        )
    return state.bundle_name, state.delivery, bundle_sums_sha256(state.sealed, state.delivery)


def _read(path: Path, limit: int) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from exc
    if len(data) > limit:
        raise UsageError(f"{path}: larger than {limit} bytes; not a statement or signature")
    return data


@acceptance_app.command("statement")
@handles_errors
def statement(
    playbook_path: Annotated[Path, typer.Argument(metavar="PLAYBOOK", help="The playbook.")],
    signatory: Annotated[
        str, typer.Option("--signatory", help="Who signs for the client (name, role).")
    ],
    decision: Annotated[
        str,
        typer.Option("--decision", help="accepted | accepted-with-reservations | refused."),
    ] = "accepted",
    reservations: Annotated[
        str, typer.Option("--reservations", help="What must be corrected (or why refused).")
    ] = "",
    early_erasure: Annotated[
        bool,
        typer.Option(
            "--early-erasure", help="The client asks for erasure before the retrieval period ends."
        ),
    ] = False,
    signed_on: Annotated[
        str | None, typer.Option("--date", help="Date of the statement (YYYY-MM-DD; today).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write it to this file, not stdout.")
    ] = None,
) -> None:
    """Print the acceptance statement the client signs, for the delivered bundle."""
    if decision not in DECISIONS:
        raise UsageError(f"--decision {decision!r}: one of {', '.join(DECISIONS)}")
    try:
        day = date.fromisoformat(signed_on) if signed_on else None
    except ValueError as exc:
        raise UsageError(f"--date {signed_on!r}: expected YYYY-MM-DD") from exc
    playbook = load_playbook(playbook_path)
    bundle, _, digest = _delivered(playbook)
    text = render_statement(
        statement_for(
            playbook,
            bundle,
            digest,
            decision=decision,
            signatory=signatory,
            reservations=reservations,
            early_erasure=early_erasure,
            signed_on=day,
        )
    )
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    write_atomic(output, text.encode("utf-8"), mode=0o644)
    console.print(
        f"written: {output}; the client signs it unchanged with\n"
        f"  ssh-keygen -Y sign -n handover-acceptance -f <client key> {output}",
        soft_wrap=True,
        markup=False,
    )


@acceptance_app.command("submit")
@handles_errors
def submit(
    playbook_path: Annotated[Path, typer.Argument(metavar="PLAYBOOK", help="The playbook.")],
    statement_file: Annotated[
        Path, typer.Option("--statement", help="The statement as the client signed it.")
    ],
    signature_file: Annotated[
        Path | None,
        typer.Option("--signature", help="Its SSH signature (default: <statement>.sig)."),
    ] = None,
) -> None:
    """Check a signed acceptance as the flow will, then drop it beside the delivery."""
    playbook = load_playbook(playbook_path)
    bundle, delivery, digest = _delivered(playbook)
    data = _read(statement_file, MAX_STATEMENT_BYTES)
    sig_path = signature_file or statement_file.with_name(statement_file.name + ".sig")
    signature = _read(sig_path, MAX_SIGNATURE_BYTES).decode("utf-8", "replace")
    verified = verify_statement(
        data,
        signature,
        playbook_signers(playbook),
        bundle,
        digest,
        expected_contract=playbook.contract_id,
    )
    drop_signed(playbook, bundle, delivery, data, signature)
    s = verified.statement
    console.print(
        f"ok: {s.decision} by {s.signatory}, signed by {verified.principal} "
        f"({verified.signer_fingerprint}); dropped in {drop_location(playbook, bundle, delivery)}",
        soft_wrap=True,
        markup=False,
    )
