"""`handover init CONTRACT`: start a contract from a few answers, not from a copied example.

On a terminal it asks what is missing from the flags; with `--yes` (scripts,
tests) it asks nothing and takes the defaults. The playbook it writes is
validated before it is written (atomically, never over an existing file
unless `--force`), and the command says what to fill next.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from handover.cli import app, console, handles_errors
from handover.contract.init_template import (
    TODO,
    InitAnswers,
    InitContact,
    InitHost,
    next_steps,
    parse_contact,
    parse_host,
    render_playbook,
)
from handover.contract.loader import validate_playbook_text
from handover.errors import UsageError
from handover.state.atomic import write_atomic
from handover.state.home import CONTRACT_ID_PATTERN

PUBLIC_FILE_MODE = 0o644  # a playbook holds no secret, only references


def _interactive(yes: bool) -> bool:
    return not yes and sys.stdin.isatty()


def _ask(value: str | None, question: str, default: str, interactive: bool) -> str:
    if value is not None:
        return value
    if interactive:
        answer: str = typer.prompt(question, default=default)
        return answer
    return default


def _ask_list(values: list[str], question: str, interactive: bool) -> list[str]:
    """The flag's values, else (on a terminal) answers until an empty one."""
    if values or not interactive:
        return values
    answers: list[str] = []
    while True:
        answer: str = typer.prompt(question, default="", show_default=False)
        if not answer.strip():
            return answers
        answers.append(answer.strip())


def _date(value: str | None, option: str) -> date:
    if value is None:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option} {value!r}: expected YYYY-MM-DD") from None


@app.command()
@handles_errors
def init(
    contract: Annotated[str, typer.Argument(help="The contract id (slug), e.g. acme-2026.")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Where to write the playbook (default playbooks/CONTRACT.yaml)."
        ),
    ] = None,
    title: Annotated[str | None, typer.Option(help="Human title of the contract.")] = None,
    provider: Annotated[str | None, typer.Option(help="Provider's legal name.")] = None,
    client: Annotated[str | None, typer.Option(help="Client's legal name.")] = None,
    provider_contact: Annotated[
        list[str] | None,
        typer.Option("--provider-contact", help="'Name <e-mail>' (repeatable)."),
    ] = None,
    client_contact: Annotated[
        list[str] | None,
        typer.Option("--client-contact", help="'Name <e-mail>' (repeatable)."),
    ] = None,
    host: Annotated[
        list[str] | None,
        typer.Option("--host", help="NAME=ssh://user@address[:port] or NAME=local (repeatable)."),
    ] = None,
    recipient: Annotated[
        list[str] | None,
        typer.Option(
            "--recipient",
            help="Who opens the exit bundle: age1..., an ssh public key or file:PATH "
            "(repeatable; default file:keys/CONTRACT/client.recipients).",
        ),
    ] = None,
    signed: Annotated[
        str | None, typer.Option(help="Signature date YYYY-MM-DD (default today).")
    ] = None,
    effective: Annotated[
        str | None, typer.Option(help="Start of services YYYY-MM-DD (default: signed).")
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Ask nothing: flags and defaults only.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented playbook for a new contract, and say what to fill next."""
    if not CONTRACT_ID_PATTERN.match(contract):
        raise UsageError(
            f"{contract!r} is not a contract id (2 to 63 of a-z, 0-9 and '-', "
            "starting with a letter or digit)"
        )
    path = out if out is not None else Path("playbooks") / f"{contract}.yaml"
    if path.exists() and not force:
        raise UsageError(f"{path} exists; choose another --out, or --force to overwrite it")
    ask = _interactive(yes)
    signed_on = _date(signed, "--signed")
    answers = InitAnswers(
        contract_id=contract,
        title=_ask(title, "Contract title", f"Infogérance {contract}", ask),
        provider=_ask(provider, "Provider's legal name", f"{TODO} provider", ask),
        client=_ask(client, "Client's legal name", f"{TODO} client", ask),
        provider_contacts=_contacts(provider_contact, "--provider-contact", "Provider", ask),
        client_contacts=_contacts(client_contact, "--client-contact", "Client", ask),
        hosts=_hosts(host or [], ask),
        recipients=_ask_list(
            recipient or [],
            "Recipient of the exit bundle (age1... or file:PATH, empty: later)",
            ask,
        ),
        signed=signed_on,
        effective=_date(effective, "--effective") if effective else signed_on,
        delivery_path=f"exports/{contract}",
    )
    text = render_playbook(answers)
    validate_playbook_text(text, str(path))  # never write a playbook that does not load
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text.encode("utf-8"), mode=PUBLIC_FILE_MODE)
    console.print(f"wrote {path} (contract {contract})", soft_wrap=True)
    console.print("Next:")
    for number, step in enumerate(next_steps(answers, str(path)), start=1):
        console.print(f"  {number}. {step}", soft_wrap=True)


def _contacts(values: list[str] | None, option: str, who: str, ask: bool) -> list[InitContact]:
    """At least one contact per party: takeover's first item confirms them."""
    given = values or []
    while not given and ask:
        given = _ask_list([], f"{who} contact 'Name <e-mail>' (empty: done)", ask)
    if not given:
        raise UsageError(
            f"{option}: give at least one 'Name <e-mail>' (takeover confirms the contacts first)"
        )
    return [parse_contact(value, option) for value in given]


def _hosts(values: list[str], ask: bool) -> list[InitHost]:
    given = _ask_list(values, "Host NAME=ssh://user@address[:port] (empty: done)", ask)
    hosts = [parse_host(value) for value in given]
    names = [h.name for h in hosts]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"--host: {', '.join(twice)} given twice")
    return hosts
