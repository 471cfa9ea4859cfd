"""The playbook `handover init` writes: a few answers in, a commented YAML file out.

A new contract should not start by copying a 190-line example: the answers
that matter (who, which hosts, who opens the exit bundle) go in, and the
rest of the file is comments showing what to fill next, each section where
it belongs. Pure functions: the command asks and writes, this module only
parses the answers and renders the text (which the command validates before
writing, so `init` never leaves a playbook that does not load).

Strings are written as JSON strings, which YAML reads as double-quoted
scalars: a name with a colon, a quote or an accent needs no care.
"""

from __future__ import annotations

import json
import re
from datetime import date
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from handover.contract.fields import SLUG_RE
from handover.errors import UsageError

TODO = "TODO"  # what `init --yes` writes for a name it was not given
_CONTACT_RE = re.compile(r"^\s*(?P<name>[^<>]+?)\s*(?:<(?P<email>[^<>\s]+)>)?\s*$")


class InitHost(BaseModel):
    """A host as `--host NAME=ssh://user@address:port` or `--host NAME=local` gives it."""

    model_config = ConfigDict(frozen=True)

    name: str
    transport: str  # "ssh" or "local"
    address: str | None = None
    port: int = 22
    user: str | None = None


class InitContact(BaseModel):
    """A contact as `Name <e-mail>` (the e-mail is optional)."""

    model_config = ConfigDict(frozen=True)

    name: str
    email: str | None = None


class InitAnswers(BaseModel):
    """What `handover init` asks; everything else is left as comments in the file."""

    model_config = ConfigDict(frozen=True)

    contract_id: str
    title: str
    provider: str
    client: str
    provider_contacts: list[InitContact] = Field(default_factory=list)
    client_contacts: list[InitContact] = Field(default_factory=list)
    hosts: list[InitHost] = Field(default_factory=list)
    recipients: list[str] = Field(default_factory=list)
    signed: date
    effective: date
    delivery_path: str


def parse_host(spec: str) -> InitHost:
    """`NAME=ssh://user@address:port` (user and port optional) or `NAME=local`.

    Raises UsageError quoting the option, so a typo is one clear line.
    """
    name, sep, target = spec.partition("=")
    name, target = name.strip(), target.strip()
    where = f"--host {spec!r}"
    if not sep or not name or not target:
        raise UsageError(f"{where}: expected NAME=ssh://user@address[:port] or NAME=local")
    if not SLUG_RE.match(name):
        raise UsageError(f"{where}: host name {name!r} must be a slug (a-z, 0-9, '-')")
    if target == "local":
        return InitHost(name=name, transport="local")
    if not target.startswith("ssh://"):
        target = "ssh://" + target
    try:
        parts = urlsplit(target)
        port = parts.port or 22
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from None
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.password:
        raise UsageError(f"{where}: expected NAME=ssh://user@address[:port] or NAME=local")
    return InitHost(
        name=name, transport="ssh", address=parts.hostname, port=port, user=parts.username
    )


def parse_contact(spec: str, option: str) -> InitContact:
    """`Name <e-mail>` or `Name`; UsageError naming `option` otherwise."""
    match = _CONTACT_RE.match(spec)
    if not match or not match.group("name").strip():
        raise UsageError(f"{option} {spec!r}: expected 'Name <e-mail>' or 'Name'")
    email = match.group("email")
    if email is not None and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", email):
        raise UsageError(f"{option} {spec!r}: bad e-mail address {email!r}")
    return InitContact(name=match.group("name").strip(), email=email)


_NOT_IN_YAML = re.compile(r"[\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def yaml_string(value: str) -> str:
    """`value` as a YAML double-quoted scalar, readable accents included.

    A JSON string is a YAML double-quoted scalar; JSON leaves DEL, the C1
    controls and lone surrogates as they are, which YAML refuses in a
    document: those are escaped too.
    """
    text = json.dumps(value, ensure_ascii=False)
    return _NOT_IN_YAML.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


_q = yaml_string


def _contacts(contacts: list[InitContact], indent: str) -> list[str]:
    if not contacts:
        return [
            f"{indent}contacts: []   # at least one: takeover confirms them first",
        ]
    lines = [f"{indent}contacts:"]
    for contact in contacts:
        entry = f"name: {_q(contact.name)}"
        if contact.email:
            entry += f", email: {_q(contact.email)}"
        lines.append(f"{indent}  - {{{entry}}}")
    return lines


def _hosts(answers: InitAnswers) -> list[str]:
    if not answers.hosts:
        return [
            "  hosts: []   # TODO: `handover hosts import INVENTORY --into THIS_FILE`, or by hand:",
            "  # hosts:",
            "  #   - {name: web01, transport: ssh, address: 192.0.2.10, user: ops,",
            f"  #      credential: vault:{answers.contract_id}/web01-ops}}",
        ]
    lines = ["  hosts:"]
    for host in answers.hosts:
        lines.append(f"    - name: {host.name}")
        lines.append(f"      transport: {host.transport}")
        if host.transport == "ssh":
            lines.append(f"      address: {_q(host.address or '')}")
            if host.port != 22:
                lines.append(f"      port: {host.port}")
            if host.user:
                lines.append(f"      user: {_q(host.user)}")
            lines.append(
                f"      # credential: vault:{answers.contract_id}/{host.name}-{host.user or 'ops'}"
                "   # once received (takeover item credentials-received)"
            )
    return lines


def render_playbook(answers: InitAnswers) -> str:
    """The commented playbook for `answers`; it validates as it is (see the module)."""
    cid = answers.contract_id
    recipients = answers.recipients or [f"file:keys/{cid}/client.recipients"]
    lines = [
        "# yaml-language-server: $schema=../.handover/playbook.schema.json",
        f"# Playbook of contract {cid}, written by `handover init`.",
        "# Check it with `handover validate THIS_FILE` (add --ready on the machine that runs",
        "# the flows); `handover schema --out .handover/playbook.schema.json` enables completion.",
        "# Secrets never go here, only references: env:NAME, file:PATH, vault:CONTRACT/ENTRY.",
        "contract:",
        f"  id: {cid}",
        f"  title: {_q(answers.title)}",
        "  parties:",
        "    provider:",
        f"      legal_name: {_q(answers.provider)}",
        '      # registration: "SIREN ..."',
        *_contacts(answers.provider_contacts, "      "),
        "      # escalation:   # level 1 first; after_minutes: when to go up a level",
        '      #   - {level: 1, name: "Service desk", email: "...", phone: "..."}',
        "    client:",
        f"      legal_name: {_q(answers.client)}",
        *_contacts(answers.client_contacts, "      "),
        "  dates:",
        f"    signed: {answers.signed.isoformat()}",
        f"    effective: {answers.effective.isoformat()}",
        "    initial_term_months: 12",
        "    renewal: tacit            # tacit | explicit | none",
        "    notice_period_months: 3",
        "",
        "perimeter:",
        *_hosts(answers),
        "  datasets: []   # the data returned at exit: exactly one of paths, dump or s3 each",
        "  # datasets:",
        "  #   - {name: www, host: web01, paths: [/var/www]}",
        '  #   - {name: erp-db, host: db01, dump: {command: "pg_dump -Fc erp", '
        "filename: erp.dump}}",
        "  software: []   # e.g. - {name: Microsoft 365, kind: office, owner: client}",
        "",
        "# services: hotline, maintenance, on-site delay; sla: availability and severities.",
        "# `handover schema` lists every field; playbooks/examples/acme.yaml shows them all.",
        "",
        "reversibility:",
        "  # Who can open the exit bundle: age recipients (age1...), ssh public keys, or",
        "  # file:PATH of a recipients file (one per line), relative to where handover runs.",
        "  recipients:",
        *[f"    - {_q(r)}" for r in recipients],
        "  # The provider's OpenSSH Ed25519 signing key (signs SHA256SUMS of the bundle).",
        f"  signing_key: vault:{cid}/provider-signing",
        "  # Who may sign the client's acceptance (allowed_signers lines or file:PATH).",
        "  # Without it the exit stops before revoking access and erasing copies.",
        f"  # client_signers: [file:keys/{cid}/client.allowed_signers]",
        "  delivery:",
        "    kind: local                # or s3 with bucket/prefix (presigned links)",
        f"    path: {_q(answers.delivery_path)}",
        "  deadlines: {notice_months: 2, transition_days: 30, retrieval_days: 30, "
        "erasure_days: 30}",
        "",
        "# backups:   # the provider's own backups during the operational phase",
        f"#   target: s3://backups/{cid}",
        "#   recipients: [age1...]",
        "",
        "phases:",
        "  takeover:",
        "    add: []",
        "    # Items you add are ticked by a person (`handover item done`), so they say manual:",
        "    #   - {id: m365-audit, title: Microsoft 365 audit, clause: Annexe 2, owner: provider,",
        "    #      evidence_kind: report, manual: true}",
        "    # waive: [{id: documentation-collected, reason: no outgoing provider}]",
        "",
    ]
    return "\n".join(lines)


def next_steps(answers: InitAnswers, path: str) -> list[str]:
    """What to fill next, in the order the flows will need it."""
    cid = answers.contract_id
    steps: list[str] = []
    placeholders = [
        f"contract.parties.{side}.legal_name"
        for side, name in (("provider", answers.provider), ("client", answers.client))
        if name.startswith(TODO)
    ]
    if placeholders:
        steps.append(f"replace the placeholder legal names ({', '.join(placeholders)})")
    if not answers.hosts:
        steps.append(f"add the hosts: handover hosts import INVENTORY --into {path}")
    steps.append("list the datasets to return at exit (perimeter.datasets)")
    if not answers.recipients:
        steps.append(f"put the client's age recipient in keys/{cid}/client.recipients")
    steps.append(
        f"store the provider's signing key: handover vault add {cid} provider-signing "
        "--kind ssh-key (then the hosts' credentials as they are received)"
    )
    steps.append(f"check it: handover validate {path} (with --ready where the flows run)")
    return steps
