"""Runbooks (procédures d'exploitation): per host, how to check, restart, restore, escalate.

Written for the engineer on duty: every step is a command to paste, with
the ssh prefix of the host already in it, and the restore steps name the
backup volume and the identity that opens it.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING

from handover.documents.blocks import Inline, code, join_codes
from handover.documents.builder import DocumentBuilder
from handover.documents.document import Document
from handover.documents.sections import (
    escalation_tables,
    header_fields,
    host_access,
    severity_table,
)
from handover.i18n import Texts

if TYPE_CHECKING:
    from handover.contract.backups import Backups
    from handover.contract.perimeter import Dataset, Host
    from handover.contract.playbook import Playbook
    from handover.contract.services import Sla
    from handover.estate.inventory import Inventory


def runbooks(playbook: Playbook, inventories: Sequence[Inventory] = ()) -> Document:
    """Runbooks (procédures d'exploitation): per host, how to check, restart, restore, escalate.

    With inventories, each host lists its running services with their
    restart command; without, the generic commands are given.
    """
    by_host = {inv.host: inv for inv in inventories}
    b = DocumentBuilder(Texts.for_contract(playbook.contract))
    t = b.t
    header_fields(b, playbook, None)
    b.h(2, t._("Escalation (common to every host)"))
    severity_table(b, playbook)
    escalation_tables(b, playbook, level=3)
    for host in playbook.perimeter.hosts:
        _host_runbook(b, playbook, host, by_host.get(host.name))
    title = t._("Runbooks: {title}", title=playbook.contract.title)
    return b.document("runbooks", title)


def _host_runbook(
    b: DocumentBuilder, playbook: Playbook, host: Host, inv: Inventory | None
) -> None:
    t = b.t
    b.h(2, t._("Host {host}", host=host.name))
    b.fields(
        [
            (t._("Access"), host_access(t, host)),
            (t._("Credential (reference)"), code(host.credential) if host.credential else None),
            (t._("Pinned host key"), code(host.host_key) if host.host_key else None),
            (t._("Tags"), ", ".join(host.tags) or None),
        ]
    )
    prefix = _command_prefix(host)
    _check_steps(b, host, playbook.sla, prefix)
    _restart_steps(b, inv, prefix)
    b.h(3, t._("Restore from backup"))
    datasets = [d for d in playbook.perimeter.datasets if d.host == host.name]
    if not datasets:
        b.p(t._("No dataset of this host is backed up."))
    elif playbook.backups is None:
        b.p(t._("The playbook defines no backups: nothing to restore from."), "warning")
    else:
        for dataset in datasets:
            b.p([t._("Dataset") + " ", code(dataset.name), t._("{label}:", label="")])
            b.bullets(_restore_steps(t, host, dataset, playbook.backups), ordered=True)
    _escalate_step(b, playbook)


def _command_prefix(host: Host) -> str:
    """`ssh -p PORT USER@ADDRESS ` before each command, nothing for the local host."""
    if host.transport == "local":
        return ""
    return f"ssh -p {host.port} {host.user + '@' if host.user else ''}{host.address} "


def _check_steps(b: DocumentBuilder, host: Host, sla: Sla, prefix: str) -> None:
    t = b.t
    b.h(3, t._("Check"))
    checks: list[Inline] = [
        [t._("Reachable:") + " ", code(f"{prefix}true")]
        if prefix
        else t._("Local host: the worker runs on it; run the commands below there."),
        [t._("Failed services:") + " ", code(f"{prefix}systemctl --failed --no-pager")],
        [
            t._("Disk use (alert at {percent}%):", percent=sla.disk_threshold_percent) + " ",
            code(f"{prefix}df -hP"),
        ],
        [t._("Listening ports:") + " ", code(f"{prefix}ss -ltnup")],
    ]
    for path in host.cert_paths:
        checks.append(
            [
                t._(
                    "Certificates under {path} (warn {days} days before expiry):",
                    path=path,
                    days=sla.cert_warning_days,
                )
                + " ",
                code(
                    f"{prefix}find {shlex.quote(path)} -name '*.pem' -exec "
                    "openssl x509 -noout -enddate -subject -in {} \\;"
                ),
            ]
        )
    b.bullets(checks)


def _restart_steps(b: DocumentBuilder, inv: Inventory | None, prefix: str) -> None:
    """Each running service's restart and status commands, or the generic ones."""
    t = b.t
    b.h(3, t._("Restart"))
    if inv is not None:
        services = sorted(s.name for s in inv.services if s.state in ("running", "active"))
        b.table(
            [t._("Service"), t._("Restart"), t._("Status")],
            [
                [
                    code(name),
                    code(f"{prefix}sudo systemctl restart {shlex.quote(name)}"),
                    code(f"{prefix}systemctl status --no-pager {shlex.quote(name)}"),
                ]
                for name in services
            ],
            t._("No running service recorded by the inventory."),
        )
    else:
        b.p(
            [
                t._("No inventory given: restart a service with") + " ",
                code(f"{prefix}sudo systemctl restart NAME"),
                " " + t._("and check it with") + " ",
                code(f"{prefix}systemctl status NAME"),
                ".",
            ]
        )
    b.p(t._("Announce any restart outside the maintenance window to the client first."), "note")


def _restore_steps(t: Texts, host: Host, dataset: Dataset, backups: Backups) -> list[Inline]:
    """Pick, check, decrypt and extract the dataset's latest backup, then put the data back."""
    identity = backups.identity or t._("the provider's backup identity")
    volume = f"volumes/NNNN-{host.name}-{dataset.name}.tar.age"
    target = f"/tmp/restore-{dataset.name}"
    steps: list[Inline] = [
        [
            t._("Pick the latest backup under") + " ",
            code(backups.target),
            " "
            + t._(
                "(kept {days} days, last {last} always).",
                days=backups.retention_days,
                last=backups.keep_last,
            ),
        ],
        [
            t._("Check it:") + " ",
            code("sha256sum -c SHA256SUMS"),
            " " + t._("in the backup folder."),
        ],
        [
            t._("Decrypt and extract, KEY being the backup identity") + " (",
            code(identity),
            "): ",
            code(f"mkdir -p {target} && age -d -i KEY {volume} | tar -x -C {target}"),
        ],
        [
            t._("Check every file:") + " ",
            code(f"cd {target} && sha256sum -c --quiet SHA256SUMS"),
        ],
    ]
    if dataset.dump is not None:
        steps.append(
            [
                t._("Load the dump") + " ",
                code(dataset.dump.filename),
                " " + t._("with the database's restore tool") + " (",
                code(_restore_tool(t, dataset.dump.filename)),
                "), " + t._("on a scratch database first."),
            ]
        )
    else:
        steps.append(
            [
                t._("Copy the needed files back to") + " ",
                *join_codes(dataset.paths or []),
                " " + t._("(rsync -a --dry-run first), then check the service."),
            ]
        )
    return steps


def _restore_tool(t: Texts, filename: str) -> str:
    lower = filename.lower()
    if lower.endswith((".dump", ".pgdump", ".backup")):
        return "pg_restore"
    if lower.endswith(".sql") or lower.endswith(".sql.gz"):
        return "psql / mysql"
    return t._("the tool that produced it")


def _escalate_step(b: DocumentBuilder, playbook: Playbook) -> None:
    t = b.t
    b.h(3, t._("Escalate"))
    onsite = playbook.services.onsite
    if onsite:
        text = t._(
            "Qualify the severity with the table above; if the response or resolution time "
            "is about to be exceeded, escalate to the next level of the provider's escalation "
            "path; send a technician on site within {delay} when remote action is not enough.",
            delay=t.hours(onsite.delay_hours),
        )
    else:
        text = t._(
            "Qualify the severity with the table above; if the response or resolution time "
            "is about to be exceeded, escalate to the next level of the provider's escalation "
            "path."
        )
    b.p(text)
