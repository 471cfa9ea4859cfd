"""What the flows will need beyond a well-typed playbook: contacts, references, keys, manual items.

A playbook can validate and still fail its first run: takeover stops on
parties without contacts, an item the playbook adds is ticked by no flow (so
its phase never completes), a `file:` recipients list or a credential
reference that points nowhere fails the run that reaches it. `handover
validate` runs these checks after the schema, with the same
`file:line: field.path: problem` lines.

Two severities, because two kinds of truth are checked:

- `error`: the playbook itself is wrong for the flows (no contact, an added
  item neither a flow nor a person is meant to tick). It fails `validate`.
- `warning`: this machine cannot yet give what a run will ask for (an
  environment variable not set, a `file:` that does not exist, a vault
  entry not imported, no client signers for the exit). Normal before
  takeover (its item "credentials received" is precisely the vault being
  filled) and on any machine but the worker's, so checked only when
  `validate --ready` asks for a playbook ready to run here and now.

Only presence is checked, never a value: a reference is looked up, not
resolved, and no message quotes what it would resolve to. `prefect-secret:`
references need the Prefect server and are not checked here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from handover.contract.base import Loc, format_loc
from handover.contract.playbook import Playbook
from handover.contract.recipients import FILE_PREFIX, load_recipients
from handover.contract.signers import load_signers
from handover.contract.yaml_lines import compose
from handover.errors import HandoverError, SecretRefError, VaultError
from handover.phases import PHASES
from handover.secrets.references import parse_ref
from handover.secrets.vault import Vault
from handover.secrets.vault_references import parse_vault_ref
from handover.state.home import shared_contracts_folder
from handover.state.layout import ContractPaths

Severity = Literal["error", "warning"]
VaultNames = Callable[[str], Collection[str] | str]
"""contract id -> the names of its vault's entries, or why they cannot be read."""

# The item ids each phase flow ticks (`run.item("<id>", ...)` in flows/<phase>.py, and
# flows/operational_tasks.py for the operational tasks on their own clocks).
# They are the template's ids; an item a playbook adds is ticked by no flow.
# tests/unit/test_readiness.py reads the flows to keep this list true.
FLOW_ITEMS: Mapping[str, frozenset[str]] = {
    "takeover": frozenset(
        {
            "parties-confirmed",
            "hosts-reachable",
            "inventory",
            "credentials-received",
            "baseline-snapshot",
            "documentation-collected",
            "baseline-report",
            "reversibility-plan",
        }
    ),
    "implementation": frozenset(
        {
            "provider-access",
            "health-checks-defined",
            "backup-schedule",
            "hotline-procedure",
            "runbooks",
            "reversibility-drill-scheduled",
        }
    ),
    "operational": frozenset(
        {
            "health-checks",
            "backups",
            "restore-check",
            "security-updates",
            "incidents",
            "sla-report",
            "technology-watch",
            "reversibility-drill",
        }
    ),
    "reversibility": frozenset(
        {
            "exit-notice",
            "knowledge-transfer-plan",
            "final-inventory",
            "datasets-exported",
            "credentials-exported",
            "documentation-exported",
            "bundle-sealed",
            "bundle-delivered",
            "client-acceptance",
            "knowledge-transfer-sessions",
            "access-revoked",
            "copies-erased",
            "exit-report",
        }
    ),
}


@dataclass(frozen=True)
class Finding:
    """One thing a flow will miss, at a field of the playbook."""

    loc: Loc
    message: str
    severity: Severity = "error"


def contact_findings(playbook: Playbook) -> list[Finding]:
    """Each party needs a contact: takeover's first item confirms them, documents list them."""
    parties = playbook.contract.parties
    return [
        Finding(
            ("contract", "parties", side, "contacts"),
            f"no contact for the {side}: takeover's item parties-confirmed needs at least one "
            "(name, and e-mail or phone)",
        )
        for side, party in (("provider", parties.provider), ("client", parties.client))
        if not party.contacts
    ]


def manual_item_findings(playbook: Playbook) -> list[Finding]:
    """Items the playbook adds are ticked by no flow: they must say a person ticks them."""
    findings: list[Finding] = []
    for phase in PHASES:
        for index, item in enumerate(playbook.phases.of(phase).add):
            if item.manual or item.id in FLOW_ITEMS[str(phase)]:
                continue
            findings.append(
                Finding(
                    ("phases", str(phase), "add", index, "id"),
                    f"no flow ticks item {item.id!r}, so the {phase} phase would never complete: "
                    f"add `manual: true` (a person ticks it with `handover item done "
                    f"{playbook.contract_id} {phase} {item.id} --evidence FILE`)",
                )
            )
    return findings


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def field_loc(path: str) -> Loc:
    """('perimeter', 'hosts', 1, 'credential') from `perimeter.hosts[1].credential`."""
    return tuple(int(index) if index else name for name, index in _PATH_PART.findall(path))


def reference_locations(playbook: Playbook) -> Iterator[tuple[Loc, str]]:
    """Every credential reference of the playbook with its field, as `secret_refs` lists them.

    Taken from `Playbook.secret_refs` (the list the credentials-received item
    and `handover vault check` use), so a new kind of reference is checked
    here the day it is added there.
    """
    for path, ref in playbook.secret_refs():
        yield field_loc(path), ref


def reference_problem(
    ref: str, environ: Mapping[str, str], base: Path, vault_names: VaultNames
) -> str | None:
    """Why `ref` would not resolve on this machine (presence only), or None.

    `env:` needs the variable set, `file:` a readable file (relative to
    `base`, as the resolver reads it from the working directory), `vault:`
    the entry in the contract's vault. `prefect-secret:` is not checked.
    """
    try:
        scheme, rest = parse_ref(ref)
    except SecretRefError as exc:
        return str(exc)
    if scheme == "env":
        return None if rest in environ else f"{ref}: environment variable {rest} is not set"
    if scheme == "file":
        path = Path(rest).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            return f"{ref}: no such file"
        return None if os.access(path, os.R_OK) else f"{ref}: file is not readable"
    if scheme == "vault":
        try:
            contract, name, _field = parse_vault_ref(rest)
        except SecretRefError as exc:
            return str(exc)
        names = vault_names(contract)
        if isinstance(names, str):
            return f"{ref}: {names}"
        if name not in names:
            return (
                f"{ref}: no entry {name!r} in the vault of {contract} "
                f"(add it with `handover vault add {contract} {name}` or import it)"
            )
    return None


def reference_findings(
    playbook: Playbook, environ: Mapping[str, str], base: Path, vault_names: VaultNames
) -> list[Finding]:
    """The credential references that would not resolve here (warnings: see the module)."""
    cache: dict[str, Collection[str] | str] = {}

    def cached(contract: str) -> Collection[str] | str:
        if contract not in cache:
            cache[contract] = vault_names(contract)
        return cache[contract]

    findings: list[Finding] = []
    for loc, ref in reference_locations(playbook):
        problem = reference_problem(ref, environ, base, cached)
        if problem:
            findings.append(Finding(loc, problem, "warning"))
    return findings


def key_file_findings(playbook: Playbook, base: Path) -> list[Finding]:
    """`file:` recipients and allowed-signers lists that cannot be read or do not parse."""
    lists: list[tuple[Loc, list[str], Callable[[list[str], Path, str], object]]] = [
        (("reversibility", "recipients"), playbook.reversibility.recipients, load_recipients),
    ]
    if playbook.backups is not None:
        lists.append((("backups", "recipients"), playbook.backups.recipients, load_recipients))
    if playbook.reversibility.client_signers is not None:
        signers = playbook.reversibility.client_signers
        lists.append((("reversibility", "client_signers"), signers, load_signers))
    findings: list[Finding] = []
    for loc, entries, load in lists:
        for index, entry in enumerate(entries):
            if not entry.startswith(FILE_PREFIX):
                continue  # literal entries were parsed by the schema
            try:
                load([entry], base, format_loc(loc))
            except HandoverError as exc:
                message = str(exc).removeprefix(f"{format_loc(loc)}: ")
                findings.append(Finding((*loc, index), message, "warning"))
    if playbook.reversibility.client_signers is None:
        findings.append(
            Finding(
                ("reversibility",),
                "no client_signers: the client's acceptance cannot be verified, so the exit "
                "would stop before revoking access and erasing copies",
                "warning",
            )
        )
    return findings


def documentation_findings(playbook: Playbook, base: Path) -> list[Finding]:
    """Documentation sources the takeover could not read: an unknown host, a missing export.

    A host that is not in the perimeter is an error (no session reaches it);
    an export file missing beside the playbook is a warning, since it may be
    dropped there before the takeover runs.
    """
    hosts = {host.name for host in playbook.hosts}
    known = ", ".join(sorted(hosts)) or "none"
    folder = playbook.source.parent if playbook.source is not None else base
    findings: list[Finding] = []
    for index, source in enumerate(playbook.documentation.sources):
        loc: Loc = ("documentation", "sources", index)
        if source.host is not None and source.host not in hosts:
            message = f"unknown host {source.host!r} (hosts: {known})"
            findings.append(Finding((*loc, "host"), message))
        if source.file is not None:
            path = folder / source.file
            if not path.is_file():
                findings.append(
                    Finding(
                        (*loc, "file"),
                        f"{source.file}: no such file beside the playbook",
                        "warning",
                    )
                )
            elif not os.access(path, os.R_OK):
                findings.append(Finding((*loc, "file"), f"{source.file}: not readable", "warning"))
    return findings


def home_vault_names(contract: str) -> Collection[str] | str:
    """The entry names of `contract`'s vault under the handover home, or why there are none.

    Reads the vault's metadata (it decrypts the file with the vault key, as
    `handover vault list` does) and never creates the contract's folder.
    """
    home = Path(os.environ.get("HANDOVER_HOME", ".handover")).absolute()
    contracts = shared_contracts_folder() or home / "contracts"
    if not (contracts / contract).is_dir():
        return f"no vault for contract {contract} yet (`handover vault init`, then add entries)"
    vault = Vault(contract, path=ContractPaths(contract).vault_file)
    if not vault.exists():
        return f"no vault for contract {contract} yet (`handover vault init`, then add entries)"
    try:
        return set(vault.names())
    except (VaultError, HandoverError) as exc:
        return str(exc)


def readiness_findings(
    playbook: Playbook,
    *,
    environ: Mapping[str, str] | None = None,
    base: Path | None = None,
    vault_names: VaultNames = home_vault_names,
) -> list[Finding]:
    """Everything the flows will miss: contract errors first, then what this machine lacks."""
    env = os.environ if environ is None else environ
    where = Path.cwd() if base is None else base
    return [
        *contact_findings(playbook),
        *manual_item_findings(playbook),
        *documentation_findings(playbook, where),
        *reference_findings(playbook, env, where, vault_names),
        *key_file_findings(playbook, where),
    ]


def located_lines(findings: list[Finding], text: str, file: str) -> list[tuple[Severity, str]]:
    """(severity, `file:line: field.path: message`) per finding, in line order."""
    source = compose(text, file)
    rows = []
    for finding in findings:
        line = source.line_of(finding.loc)
        rows.append(
            (line, finding.severity, f"{file}:{line}: {format_loc(finding.loc)}: {finding.message}")
        )
    rows.sort(key=lambda row: row[0])
    return [(severity, message) for _line, severity, message in rows]
