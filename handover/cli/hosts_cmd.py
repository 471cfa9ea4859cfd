"""`handover hosts import`: an existing inventory (Ansible, NetBox, GLPI) into a playbook.

The hosts are appended to `perimeter.hosts` as text, so the rest of the
playbook and its comments stay as they were; the result is validated before
it replaces the file (atomically), and `--dry-run` shows what would be added
without writing. Parsing and insertion are `handover.estate.hosts_import`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer
from rich.table import Table

from handover.cli import app, console, handles_errors
from handover.contract.loader import load_playbook, validate_playbook_text
from handover.errors import PlaybookError, UsageError
from handover.estate.hosts_import import (
    FORMATS,
    Format,
    duplicate_problems,
    imported_rows,
    insert_hosts,
    parse_inventory,
)
from handover.state.atomic import write_atomic

hosts_app = typer.Typer(help="The hosts of a playbook's perimeter: import them from an inventory.")
app.add_typer(hosts_app, name="hosts")

PUBLIC_FILE_MODE = 0o644  # a playbook holds no secret, only references


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a {what}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from None


@hosts_app.command("import")
@handles_errors
def import_hosts(
    inventory: Annotated[
        Path, typer.Argument(help="Ansible inventory (INI or YAML) or NetBox/GLPI CSV export.")
    ],
    into: Annotated[Path, typer.Option("--into", help="The playbook to add the hosts to.")],
    fmt: Annotated[
        str, typer.Option("--format", help="auto (by extension and content), ini, yaml or csv.")
    ] = "auto",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be added; write nothing.")
    ] = False,
) -> None:
    """Add the hosts of an inventory to a playbook's perimeter (never twice the same host)."""
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: must be one of {', '.join(FORMATS)}")
    hosts = parse_inventory(_read(inventory, "inventory"), str(inventory), cast(Format, fmt))
    playbook = load_playbook(into)
    existing = [(h.name, h.address, h.port) for h in playbook.hosts]
    problems = duplicate_problems(hosts, existing)
    if problems:
        raise UsageError("\n".join([*problems, f"nothing written to {into}"]))
    if not hosts:
        console.print(f"{inventory}: no host found; {into} unchanged", soft_wrap=True)
        return
    text = _read(into, "playbook")
    updated = insert_hosts(text, hosts)
    try:
        validate_playbook_text(updated, str(into))
    except PlaybookError as error:
        lines = error.problems or [str(error)]
        raise UsageError(
            "\n".join([*lines, f"the hosts would not validate; {into} unchanged"])
        ) from None
    table = Table(
        title=f"{len(hosts)} host(s) {'to add' if dry_run else 'added'} to {into}",
        title_justify="left",
    )
    for column in ("name", "address", "port", "user", "tags", "from"):
        table.add_column(column, overflow="fold")
    for row in imported_rows(hosts):
        table.add_row(*row)
    if not dry_run:
        write_atomic(into, updated.encode("utf-8"), mode=PUBLIC_FILE_MODE)
    console.print(table)
    if dry_run:
        console.print("dry run: nothing written")
    else:
        console.print(
            "next: give each host its credential reference and host key "
            "(`handover run takeover --pin-host-keys` records them at first contact)",
            soft_wrap=True,
        )
