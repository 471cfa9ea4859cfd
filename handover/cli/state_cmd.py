"""`handover state move CONTRACT`: a contract's state from this machine into the team database.

A contract that began on one machine keeps its files under
`.handover/contracts/<id>/`. Once the team's workers share a database
(`HANDOVER_STATE_URL=postgresql://...`), they refuse a local journal or vault
the database has never seen, rather than take it over quietly: this command
is how the operator moves it, once, with the chain unbroken
(`handover.checklist.migrate`). Stop the contract's runs first.
"""

from __future__ import annotations

from typing import Annotated

import typer

from handover.checklist.local_store import LocalStore
from handover.checklist.migrate import move_to_database
from handover.cli import app, console, handles_errors
from handover.errors import UsageError
from handover.state.home import CONTRACT_ID_PATTERN, handover_home
from handover.state.postgres import PostgresStore
from handover.state.store import STATE_URL_ENV, state_url

state_app = typer.Typer(
    name="state",
    help="Where contracts' state lives: move a contract into the team's database.",
    no_args_is_help=True,
)
app.add_typer(state_app, name="state")


@state_app.command("move")
@handles_errors
def move(
    contract: Annotated[str, typer.Argument(help="The contract id (its folder's name).")],
) -> None:
    """Copy a contract's checklists, audit chain, checkpoints, journals, known_hosts and vault
    from this machine's folder into the database HANDOVER_STATE_URL names."""
    if not CONTRACT_ID_PATTERN.match(contract):
        raise UsageError(f"{contract!r} is not a contract id (lowercase letters, digits, dashes)")
    target_url = state_url()
    if target_url.kind != "postgresql" or not target_url.url:
        raise UsageError(
            f"{STATE_URL_ENV} must name the team's database (postgresql://user@host/db) "
            "to move a contract into it"
        )
    contracts = handover_home() / "contracts"
    if not (contracts / contract).is_dir():
        raise UsageError(f"{contracts / contract}: no such contract folder on this machine")
    target = PostgresStore(target_url.url)
    moved = move_to_database(LocalStore(contracts), target, contract)
    console.print(
        f"moved {contract} into {target.where}: {moved.entries} audit entries, "
        f"{len(moved.checklists)} checklists ({', '.join(moved.checklists) or 'none'}), "
        f"{moved.checkpoints} signed checkpoints"
    )
    if moved.blobs:
        console.print(f"copied: {', '.join(moved.blobs)}")
    if moved.blobs_in_database:
        console.print(
            f"already in the database, kept as they are: {', '.join(moved.blobs_in_database)}"
        )
    console.print(
        f"{contracts / contract} is left as it was: archive it; the workers now use the database"
    )
