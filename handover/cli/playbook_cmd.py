"""`handover validate` and `handover schema`: check playbooks before any flow runs.

`validate` checks every file given and reports every problem of every file,
one line each (`file:line: field.path: message`), so that an operations
engineer fixes a playbook in one pass. It exits 2 when any file is invalid.
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
from handover.errors import PlaybookError
from handover.state.atomic import write_atomic


@app.command()
@handles_errors
def validate(
    files: Annotated[
        list[Path], typer.Argument(help="Playbook files to check.", metavar="FILE...")
    ],
) -> None:
    """Check playbooks: print `ok` per valid file, or one line per problem and exit 2."""
    failed = False
    for path in files:
        try:
            playbook = load_playbook(path)
        except PlaybookError as error:
            failed = True
            for line in error.problems or [str(error)]:
                err_console.print(Text("error: ", style="red") + Text(line), soft_wrap=True)
            continue
        console.print(
            Text(
                f"ok: {path} (contract {playbook.contract_id}, {len(playbook.hosts)} hosts, "
                f"{len(playbook.datasets)} datasets)",
                style="green",
            ),
            soft_wrap=True,
        )
    if failed:
        raise typer.Exit(2)


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
