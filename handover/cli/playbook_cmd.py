"""`handover validate` and `handover schema`: check playbooks before any flow runs.

`validate` checks every file given and reports every problem of every file,
one line each (`file:line: field.path: message`), so that an operations
engineer fixes a playbook in one pass. It exits 2 when any file is invalid.
After the schema it checks what the flows will need
(`handover.contract.readiness`): missing contacts and added items no flow
ticks are always errors; with `--ready`, so is what this machine lacks to
run the flows now (references not set, key files missing), which is normal
on a laptop before takeover and so not checked by default.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from handover.cli import app, console, err_console, handles_errors
from handover.contract.loader import load_playbook
from handover.contract.playbook import playbook_json_schema
from handover.contract.readiness import located_lines, readiness_findings
from handover.errors import PlaybookError
from handover.state.atomic import write_atomic


@app.command()
@handles_errors
def validate(
    files: Annotated[
        list[Path], typer.Argument(help="Playbook files to check.", metavar="FILE...")
    ],
    ready: Annotated[
        bool,
        typer.Option(
            "--ready",
            help="Also check that this machine can run the flows now: credential references "
            "set, recipients and signers files readable, client signers given.",
        ),
    ] = False,
) -> None:
    """Check playbooks: print `ok` per valid file, or one line per problem and exit 2."""
    failed = False
    for path in files:
        try:
            playbook = load_playbook(path)
        except PlaybookError as error:
            failed = True
            for line in error.problems or [str(error)]:
                _say(line)
            continue
        text = path.read_text(encoding="utf-8")
        findings = [f for f in readiness_findings(playbook) if ready or f.severity == "error"]
        lines = located_lines(findings, text, str(path))
        for _severity, message in lines:
            _say(message)
        if lines:
            failed = True
            continue
        console.print(
            Text(
                f"ok: {path} (contract {playbook.contract_id}, {len(playbook.hosts)} hosts, "
                f"{len(playbook.datasets)} datasets)" + (" ready to run here" if ready else ""),
                style="green",
            ),
            soft_wrap=True,
        )
    if failed:
        raise typer.Exit(2)


def _say(line: str) -> None:
    err_console.print(Text("error: ", style="red") + Text(line), soft_wrap=True)


@app.command()
@handles_errors
def schema(
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the schema to this file instead of stdout.")
    ] = None,
) -> None:
    """Print the JSON Schema of playbooks (for editor completion), or write it with --out."""
    text = json.dumps(playbook_json_schema(), indent=2, ensure_ascii=False) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    write_atomic(out, text.encode("utf-8"))
    console.print(Text(f"wrote {out}", style="green"), soft_wrap=True)
