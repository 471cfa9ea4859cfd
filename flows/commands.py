"""The commands that need Prefect: server, serve, run, demo.

Prefect is imported inside each command, after `flows.server.ensure_server`
has pointed the environment at a real server: Prefect reads its settings
when first imported.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from handover.cli import app, console, handles_errors

if TYPE_CHECKING:
    from handover.contract.playbook import Playbook

server_app = typer.Typer(help="The embedded Prefect server (SQLite under .handover/prefect).")
app.add_typer(server_app, name="server")


@server_app.command("start")
@handles_errors
def server_start(
    port: int = typer.Option(None, help="Port (default 4200, or a free one)."),
    host: str = typer.Option(
        "127.0.0.1",
        help="Address to listen on (default loopback; beyond it, put TLS in front: "
        "deployments/README.md).",
    ),
) -> None:
    """Start the local Prefect server (or show the one already running)."""
    from flows import server

    info = server.start(port=port, host=host)
    console.print(f"Prefect server running (pid {info.pid})")
    console.print(f"  UI:  {info.ui_url}")
    console.print(f"  API: {info.api_url}")
    # The path, never the string: terminals are logged and shared.
    console.print(f"  Login: the auth string in {server.auth_file()} (the UI asks for it)")


@server_app.command("stop")
@handles_errors
def server_stop() -> None:
    """Stop the local Prefect server (only the one this handover home started)."""
    from flows import server

    outcome, pid = server.stop_server()
    if outcome is server.StopOutcome.STOPPED:
        console.print("stopped")
    elif outcome is server.StopOutcome.NOT_OURS:
        console.print(
            f"no local Prefect server was running: {server.STATE_FILE} named pid {pid}, "
            "a process this handover home did not start (left alone; the file is removed)"
        )
    else:
        console.print("no local Prefect server was running")


@server_app.command("status")
@handles_errors
def server_status() -> None:
    """Say whether the local Prefect server runs, and where."""
    from flows import server

    info = server.status()
    if info is None:
        console.print("no local Prefect server is running (start it with `handover server start`)")
        raise typer.Exit(1)
    console.print(f"running (pid {info.pid})  UI: {info.ui_url}  API: {info.api_url}")
    console.print(f"login: the auth string in {server.auth_file()}")


def _refuse_unready(loaded: Playbook, path: Path) -> None:
    """What `validate` refuses (no contact, an added item without `manual: true`, a
    documentation source on a host outside the perimeter) stops the run before a flow run
    exists: its item would fail later with less to say. A documentation export not yet
    beside the playbook is only a warning there, and is not refused here either."""
    from handover.contract.readiness import (
        contact_findings,
        documentation_findings,
        located_lines,
        manual_item_findings,
    )
    from handover.errors import UsageError

    documentation = [
        f for f in documentation_findings(loaded, path.parent) if f.severity == "error"
    ]
    findings = [*contact_findings(loaded), *manual_item_findings(loaded), *documentation]
    if findings:
        lines = located_lines(findings, path.read_text(encoding="utf-8"), str(path))
        raise UsageError("; ".join(message for _severity, message in lines))


@app.command()
@handles_errors
def run(
    phase: str = typer.Argument(
        ..., help="takeover | implementation | operational | reversibility"
    ),
    playbook: Path = typer.Argument(..., help="The contract's playbook (YAML)."),
    pin_host_keys: bool = typer.Option(
        False,
        "--pin-host-keys",
        help="takeover: record first-contact host keys for a human to confirm.",
    ),
    accept: bool = typer.Option(
        False,
        "--accept",
        help="reversibility: answer the human steps automatically (tests, drills); the "
        "client asks for early erasure, and the notice is dated so the switch-over is today.",
    ),
    notice_date: str = typer.Option(
        None,
        "--notice-date",
        help="reversibility: the date the exit notice was given (YYYY-MM-DD; default today).",
    ),
    as_: str = typer.Option(
        None,
        "--as",
        help="Who runs it, as the checklists and the audit log record it "
        "(default: HANDOVER_ACTOR, else user@host).",
    ),
) -> None:
    """Run one phase flow of a contract against the Prefect server."""
    from datetime import date

    from handover.contract.loader import load_playbook
    from handover.errors import UsageError
    from handover.phases import parse_phase

    parse_phase(phase)
    loaded = load_playbook(playbook)  # an invalid playbook never creates a flow run
    _refuse_unready(loaded, playbook)
    if as_ is not None:
        if not as_.strip():
            raise UsageError("--as: give a name")
        os.environ["HANDOVER_ACTOR"] = as_.strip()
    notice: date | None = None
    if notice_date is not None:
        try:
            notice = date.fromisoformat(notice_date)
        except ValueError:
            raise UsageError(f"--notice-date {notice_date!r}: expected YYYY-MM-DD") from None
    from flows import server

    info = server.ensure_server()
    console.print(f"Prefect UI: {info.ui_url}")
    from flows.lifecycle import run_phase

    state_ok = run_phase(
        phase, playbook, pin_host_keys=pin_host_keys, auto_accept=accept, notice_date=notice
    )
    raise typer.Exit(0 if state_ok else 1)


@app.command()
@handles_errors
def serve(
    limit: int = typer.Option(4, help="How many flow runs may execute at once."),
) -> None:
    """Serve the four phase flows so that they can be started from the Prefect UI.

    Runs started there may only use playbooks inside the playbook folders
    (HANDOVER_PLAYBOOK_DIRS, default ./playbooks).
    """
    from flows import server
    from handover.contract.playbook_dirs import ENV_VAR, playbook_dirs

    info = server.ensure_server()
    from flows.serving import serve_phases

    folders = ", ".join(str(f) for f in playbook_dirs(os.environ.get(ENV_VAR), Path.cwd()))

    def announce() -> None:
        console.print(f"Serving the phase flows; start them from {info.ui_url}/deployments")
        console.print(f"Runs started there may use the playbooks in: {folders} ({ENV_VAR})")

    serve_phases(limit=limit, announce=announce)


@app.command()
@handles_errors
def demo(
    playbook: Path = typer.Option(
        Path("playbooks/examples/demo.yaml"), help="The demo contract's playbook."
    ),
) -> None:
    """Build a sandbox client estate and run the four phases of its contract end to end."""
    import os

    from flows import server

    # Task-level lines go to the Prefect UI; the terminal shows one line per checklist item.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")

    info = server.ensure_server()
    from flows.demo import run_demo

    ok = run_demo(playbook, info)
    raise typer.Exit(0 if ok else 1)


@app.command()
@handles_errors
def history(
    contract: str = typer.Argument(..., help="The contract id (contract.id of its playbook)."),
    as_json: bool = typer.Option(
        False, "--json", help="Write the whole history (runs, task runs, logs, checklists) as JSON."
    ),
) -> None:
    """Show a contract's flow runs: every run tagged `contract:<id>`, oldest first."""
    from rich.table import Table

    from handover.errors import UsageError
    from handover.operations.run_history import HISTORY_COLUMNS, history_rows
    from handover.state.home import CONTRACT_ID_PATTERN

    if not CONTRACT_ID_PATTERN.match(contract):
        raise UsageError(f"{contract!r} is not a contract id (2 to 63 of a-z, 0-9 and -)")
    from flows import server

    server.ensure_server()
    from tasks.run_history import read_run_history

    found = read_run_history(contract, include_logs=as_json)
    if as_json:
        typer.echo(found.model_dump_json(indent=2))
        return
    table = Table(title=f"{contract}: {len(found.runs)} flow run(s)", title_justify="left")
    for column in HISTORY_COLUMNS:
        table.add_column(column, overflow="fold")
    for row in history_rows(found):
        table.add_row(*row)
    console.print(table)
    versions = len(found.artifacts)
    console.print(f"{versions} checklist artifact version(s); selected by tag {found.selected_by}")
    console.print("logs, parameters and task runs of each run: --json")


@app.command()
@handles_errors
def status(
    contract: str = typer.Argument(None, help="A contract id; none: every contract here."),
    playbooks: Path = typer.Option(
        Path("playbooks"), help="Folder searched for the contracts' playbooks (their dates)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Write the status as JSON."),
) -> None:
    """Where contracts stand: phase, checklist items per phase, next dates and last runs."""
    import json
    from datetime import UTC, date, datetime

    from handover.contract.loader import load_playbook
    from handover.errors import HandoverError, UsageError
    from handover.operations import status as st
    from handover.state.home import CONTRACT_ID_PATTERN, handover_home

    root = handover_home() / "contracts"
    known = st.contract_ids(root)
    if contract is not None and not CONTRACT_ID_PATTERN.match(contract):
        raise UsageError(f"{contract!r} is not a contract id (2 to 63 of a-z, 0-9 and -)")
    if contract is not None and contract not in known:
        raise UsageError(
            f"no contract {contract!r} under {root} (contracts: {', '.join(known) or 'none'})"
        )
    from flows import server

    note: str | None = None
    if not os.environ.get("PREFECT_API_URL") and server.status() is None:
        note = "no Prefect server is running (`handover server start`): last runs not shown"
    else:
        try:
            server.ensure_server()
        except HandoverError as error:
            note = f"last runs not shown: {error}"

    def runs(contract_id: str, limit: int) -> list[st.RunLine] | None:
        nonlocal note
        if note is not None:
            return None
        from tasks.status import recent_runs

        try:
            return recent_runs(contract_id, limit)
        except Exception as error:  # the API died while read: one line, not the screen
            mapped = server.api_error(error)
            if mapped is None:
                raise
            note = f"last runs not shown: {mapped}"
            return None

    found = st.find_playbooks(playbooks)
    statuses = []
    for contract_id in [contract] if contract is not None else known:
        path, playbook, problem = found.get(contract_id), None, None
        try:
            playbook = load_playbook(path) if path is not None else None
        except HandoverError:
            problem = f"{path} does not validate (`handover validate {path}`): dates not shown"
        if path is None:
            problem = f"no playbook of {contract_id} under {playbooks}/ (--playbooks): no dates"
        one = st.read_status(
            contract_id,
            root,
            playbook,
            today=date.today(),
            now=datetime.now(UTC),
            runs=runs(contract_id, 5 if contract is not None else 1),
        )
        one.playbook_note = problem
        statuses.append(one)
    for one in statuses:
        one.runs_note = note
    if as_json:
        data = [s.model_dump(mode="json") for s in statuses]
        typer.echo(json.dumps(data[0] if contract is not None else data, indent=2))
    elif contract is not None:
        console.print(st.status_view(statuses[0]))
    else:
        console.print(st.overview_view(statuses, note))
