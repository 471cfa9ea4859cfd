"""`handover vault ...`: the credential vault from the command line.

Secrets never come from argv (it shows in `ps` and shell history): they are
read from a hidden prompt, from stdin (`--secret-stdin`) or from a file
(`--secret-file`, for SSH keys and certificates). Nothing here ever prints a
secret, except `vault export`, which shows the generated master password of
`credentials.kdbx` once, as it must be handed to the client.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from handover.actor import actor as default_actor
from handover.cli import app, console, err_console, handles_errors
from handover.errors import UsageError
from handover.secrets.csv_import import import_csv
from handover.secrets.kdbx import export_kdbx, import_kdbx, resolve_password
from handover.secrets.references import Secret
from handover.secrets.vault import CreatedBy, Kind, Vault, VaultEntry, check_name
from handover.secrets.vault_key import create_key_file, default_key_file, load_vault_key
from handover.secrets.vault_references import missing_references

vault_app = typer.Typer(
    name="vault",
    help="Per-contract credential vault (encrypted at rest with the vault key).",
    no_args_is_help=True,
)
app.add_typer(vault_app, name="vault")

_TEXT_KINDS = (Kind.PASSWORD, Kind.API_KEY, Kind.TOTP_SEED)


def _read_secret(kind: Kind, from_stdin: bool, from_file: Path | None, what: str) -> Secret:
    """Read a secret from stdin, a file or a hidden prompt; never echo it."""
    if from_stdin and from_file is not None:
        raise UsageError("give either --secret-stdin or --secret-file, not both")
    if from_file is not None:
        try:
            raw = from_file.read_bytes()
        except OSError as exc:
            raise UsageError(f"{from_file}: cannot read: {exc.strerror}") from exc
    elif from_stdin:
        raw = sys.stdin.buffer.read()
    else:
        if not sys.stdin.isatty():
            raise UsageError(f"{what}: no terminal for the prompt; use --secret-stdin")
        text = typer.prompt(f"Secret for {what}", hide_input=True, confirmation_prompt=True)
        raw = text.encode("utf-8")
    if kind in _TEXT_KINDS:
        raw = raw.rstrip(b"\r\n")
    if not raw:
        raise UsageError(f"{what}: empty secret")
    return Secret(raw)


@vault_app.command("init")
@handles_errors
def init(
    contract: Annotated[
        str | None, typer.Argument(help="Also create this contract's (empty) vault.")
    ] = None,
) -> None:
    """Create the vault key (if missing, 0600) and optionally a contract's vault file."""
    if os.environ.get("HANDOVER_VAULT_KEY"):
        console.print("vault key: from $HANDOVER_VAULT_KEY")
    elif default_key_file().exists():
        console.print(f"vault key: {default_key_file()} (exists)")
    else:
        path, recipient = create_key_file()
        console.print(f"vault key created: {path} (public key {recipient})", soft_wrap=True)
        console.print("Back it up outside this machine: without it no vault can be opened.")
    load_vault_key()
    if contract:
        vault = Vault(contract)
        created = vault.init()
        console.print(f"vault {'created' if created else 'exists'}: {vault.path}", soft_wrap=True)


@vault_app.command("add")
@handles_errors
def add(
    contract: Annotated[str, typer.Argument(help="Contract id.")],
    name: Annotated[str, typer.Argument(help="Entry name (slug), e.g. web01-root.")],
    kind: Annotated[Kind, typer.Option("--kind", help="What the secret is.")] = Kind.PASSWORD,
    username: Annotated[str, typer.Option("--username")] = "",
    url: Annotated[str, typer.Option("--url", help="URL or host.")] = "",
    tags: Annotated[list[str] | None, typer.Option("--tag", help="Repeatable.")] = None,
    notes: Annotated[str, typer.Option("--notes")] = "",
    group: Annotated[str, typer.Option("--group", help="KDBX group path, A/B.")] = "",
    created_by: Annotated[CreatedBy, typer.Option("--created-by")] = CreatedBy.CLIENT,
    certificate: Annotated[
        Path | None, typer.Option("--certificate", help="Certificate PEM (kind certificate).")
    ] = None,
    secret_stdin: Annotated[
        bool, typer.Option("--secret-stdin", help="Read the secret from stdin.")
    ] = False,
    secret_file: Annotated[
        Path | None, typer.Option("--secret-file", help="Read the secret from a file.")
    ] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite an entry.")] = False,
) -> None:
    """Add one credential; the secret comes from a hidden prompt, stdin or a file."""
    check_name(name)
    cert_text = ""
    if certificate is not None:
        try:
            cert_text = certificate.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{certificate}: cannot read the certificate") from exc
    entry = VaultEntry(
        name=name,
        kind=kind,
        username=username,
        url=url,
        tags=tags or [],
        notes=notes,
        group=group.strip("/"),
        created_by=created_by,
        certificate=cert_text,
    )
    secret = _read_secret(kind, secret_stdin, secret_file, f"{contract}/{name}")
    stored = Vault(contract).add(entry, secret, replace=replace)
    console.print(f"added {contract}/{stored.name} ({stored.kind.value})")


@vault_app.command("import")
@handles_errors
def import_(
    file: Annotated[Path, typer.Argument(help="KDBX database or CSV export.")],
    contract: Annotated[str, typer.Option("--contract", help="Contract id.")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="kdbx or csv (default: from the file name).")
    ] = None,
    layout: Annotated[
        str | None, typer.Option("--layout", help="CSV layout: bitwarden, 1password, keepassxc.")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the KDBX master password from stdin.")
    ] = False,
    password_ref: Annotated[
        str | None,
        typer.Option("--password-ref", help="KDBX master password reference, e.g. env:VAR."),
    ] = None,
    keyfile: Annotated[Path | None, typer.Option("--keyfile", help="KDBX key file.")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite existing entries.")] = False,
) -> None:
    """Import credentials from a KeePass database or a password-manager CSV export."""
    kind = fmt or ("kdbx" if file.suffix.lower() == ".kdbx" else "csv")
    vault = Vault(contract)
    if kind == "kdbx":
        if password_stdin and password_ref:
            raise UsageError("give either --password-stdin or --password-ref, not both")
        password: Secret | None
        if password_ref:
            password = resolve_password(password_ref)
        elif password_stdin:
            password = Secret(sys.stdin.buffer.read().rstrip(b"\r\n"))
        elif sys.stdin.isatty():
            password = Secret(
                typer.prompt(f"Master password of {file}", hide_input=True).encode("utf-8")
            )
        else:
            raise UsageError(f"{file}: no terminal for the prompt; use --password-stdin")
        result = import_kdbx(vault, file, password, keyfile=keyfile, replace=replace)
    elif kind == "csv":
        result = import_csv(vault, file, layout=layout, replace=replace)
    else:
        raise UsageError(f"--format {kind!r}: expected kdbx or csv")
    console.print(f"{file}: {result.layout} layout", soft_wrap=True)
    console.print(
        f"added {len(result.added)}, replaced {len(result.replaced)}, "
        f"skipped {len(result.skipped)} into {contract}"
    )
    for line in result.skipped:
        err_console.print(f"skipped: {line}", soft_wrap=True, markup=False)
    if kind == "csv":
        err_console.print(
            f"note: {file} holds the secrets in clear; delete it once the import is checked",
            soft_wrap=True,
            markup=False,
        )


@vault_app.command("list")
@handles_errors
def list_(contract: Annotated[str, typer.Argument(help="Contract id.")]) -> None:
    """List entries: name, kind, username, group, origin (never secrets)."""
    table = Table("name", "kind", "username", "url", "group", "by", "rotations")
    for entry in Vault(contract).entries():
        table.add_row(
            entry.name,
            entry.kind.value,
            entry.username,
            entry.url,
            entry.group,
            entry.created_by.value,
            str(entry.rotations),
        )
    console.print(table)


@vault_app.command("rotate")
@handles_errors
def rotate(
    contract: Annotated[str, typer.Argument(help="Contract id.")],
    name: Annotated[str, typer.Argument(help="Entry name.")],
    secret_stdin: Annotated[bool, typer.Option("--secret-stdin")] = False,
    secret_file: Annotated[Path | None, typer.Option("--secret-file")] = None,
    actor: Annotated[
        str | None,
        typer.Option("--actor", help="Who rotates (default $HANDOVER_ACTOR, else user@host)."),
    ] = None,
) -> None:
    """Replace an entry's secret; the previous value stays in its (encrypted) history."""
    vault = Vault(contract)
    entry = vault.get(name)
    secret = _read_secret(entry.kind, secret_stdin, secret_file, f"{contract}/{name}")
    updated = vault.rotate(name, secret, actor=actor or default_actor())
    console.print(f"rotated {contract}/{name} ({updated.rotations} previous value(s) kept)")


@vault_app.command("check")
@handles_errors
def check(playbook: Annotated[Path, typer.Argument(help="Playbook file.")]) -> None:
    """List the playbook's vault references that do not resolve; exit 1 if any."""
    from handover.contract.loader import load_playbook

    loaded = load_playbook(playbook)
    missing = missing_references(loaded.secret_refs(), Vault(loaded.contract_id))
    for line in missing:
        err_console.print(f"missing: {line}", soft_wrap=True, markup=False)
    if missing:
        raise typer.Exit(1)
    console.print(f"ok: every vault reference of {playbook} resolves")


@vault_app.command("export")
@handles_errors
def export(
    contract: Annotated[str, typer.Argument(help="Contract id.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write credentials.kdbx.")],
) -> None:
    """Write the vault to a KDBX 4 file and show its generated master password once."""
    password = export_kdbx(Vault(contract), out)
    console.print(f"wrote {out}", soft_wrap=True)
    console.print("master password (shown once, deliver it apart from the file):")
    console.print(password, markup=False, highlight=False)
