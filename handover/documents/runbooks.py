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
from handover.documents.formatting import hours_text
from handover.documents.sections import (
    escalation_tables,
    header_fields,
    host_access,
    severity_table,
)

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
    b = DocumentBuilder()
    header_fields(b, playbook, None)
    b.h(2, "Escalation (common to every host)")
    severity_table(b, playbook)
    escalation_tables(b, playbook, level=3)
    for host in playbook.perimeter.hosts:
        _host_runbook(b, playbook, host, by_host.get(host.name))
    title = f"Runbooks (procédures d'exploitation): {playbook.contract.title}"
    return b.document("runbooks", title)


def _host_runbook(
    b: DocumentBuilder, playbook: Playbook, host: Host, inv: Inventory | None
) -> None:
    b.h(2, f"Host {host.name}")
    b.fields(
        [
            ("Access", host_access(host)),
            ("Credential (reference)", code(host.credential) if host.credential else None),
            ("Pinned host key", code(host.host_key) if host.host_key else None),
            ("Tags", ", ".join(host.tags) or None),
        ]
    )
    prefix = _command_prefix(host)
    _check_steps(b, host, playbook.sla, prefix)
    _restart_steps(b, inv, prefix)
    b.h(3, "Restore from backup")
    datasets = [d for d in playbook.perimeter.datasets if d.host == host.name]
    if not datasets:
        b.p("No dataset of this host is backed up.")
    elif playbook.backups is None:
        b.p("The playbook defines no backups: nothing to restore from.", "warning")
    else:
        for dataset in datasets:
            b.p(["Dataset ", code(dataset.name), ":"])
            b.bullets(_restore_steps(host, dataset, playbook.backups), ordered=True)
    _escalate_step(b, playbook)


def _command_prefix(host: Host) -> str:
    """`ssh -p PORT USER@ADDRESS ` before each command, nothing for the local host."""
    if host.transport == "local":
        return ""
    return f"ssh -p {host.port} {host.user + '@' if host.user else ''}{host.address} "


def _check_steps(b: DocumentBuilder, host: Host, sla: Sla, prefix: str) -> None:
    b.h(3, "Check")
    checks: list[Inline] = [
        ["Reachable: ", code(f"{prefix}true")]
        if prefix
        else "Local host: the worker runs on it; run the commands below there.",
        ["Failed services: ", code(f"{prefix}systemctl --failed --no-pager")],
        ["Disk use (alert at ", f"{sla.disk_threshold_percent}%): ", code(f"{prefix}df -hP")],
        ["Listening ports: ", code(f"{prefix}ss -ltnup")],
    ]
    for path in host.cert_paths:
        checks.append(
            [
                f"Certificates under {path} (warn {sla.cert_warning_days} days before expiry): ",
                code(
                    f"{prefix}find {shlex.quote(path)} -name '*.pem' -exec "
                    "openssl x509 -noout -enddate -subject -in {} \\;"
                ),
            ]
        )
    b.bullets(checks)


def _restart_steps(b: DocumentBuilder, inv: Inventory | None, prefix: str) -> None:
    """Each running service's restart and status commands, or the generic ones."""
    b.h(3, "Restart")
    if inv is not None:
        services = sorted(s.name for s in inv.services if s.state in ("running", "active"))
        b.table(
            ["Service", "Restart", "Status"],
            [
                [
                    code(name),
                    code(f"{prefix}sudo systemctl restart {shlex.quote(name)}"),
                    code(f"{prefix}systemctl status --no-pager {shlex.quote(name)}"),
                ]
                for name in services
            ],
            "No running service recorded by the inventory.",
        )
    else:
        b.p(
            [
                "No inventory given: restart a service with ",
                code(f"{prefix}sudo systemctl restart NAME"),
                " and check it with ",
                code(f"{prefix}systemctl status NAME"),
                ".",
            ]
        )
    b.p("Announce any restart outside the maintenance window to the client first.", "note")


def _restore_steps(host: Host, dataset: Dataset, backups: Backups) -> list[Inline]:
    """Pick, check, decrypt and extract the dataset's latest backup, then put the data back."""
    identity = backups.identity or "the provider's backup identity"
    volume = f"volumes/NNNN-{host.name}-{dataset.name}.tar.age"
    target = f"/tmp/restore-{dataset.name}"
    steps: list[Inline] = [
        [
            "Pick the latest backup under ",
            code(backups.target),
            f" (kept {backups.retention_days} days, last {backups.keep_last} always).",
        ],
        ["Check it: ", code("sha256sum -c SHA256SUMS"), " in the backup folder."],
        [
            "Decrypt and extract, KEY being the backup identity (",
            code(identity),
            "): ",
            code(f"mkdir -p {target} && age -d -i KEY {volume} | tar -x -C {target}"),
        ],
        ["Check every file: ", code(f"cd {target} && sha256sum -c --quiet SHA256SUMS")],
    ]
    if dataset.dump is not None:
        steps.append(
            [
                "Load the dump ",
                code(dataset.dump.filename),
                " with the database's restore tool (",
                code(_restore_tool(dataset.dump.filename)),
                "), on a scratch database first.",
            ]
        )
    else:
        steps.append(
            [
                "Copy the needed files back to ",
                *join_codes(dataset.paths or []),
                " (rsync -a --dry-run first), then check the service.",
            ]
        )
    return steps


def _restore_tool(filename: str) -> str:
    lower = filename.lower()
    if lower.endswith((".dump", ".pgdump", ".backup")):
        return "pg_restore"
    if lower.endswith(".sql") or lower.endswith(".sql.gz"):
        return "psql / mysql"
    return "the tool that produced it"


def _escalate_step(b: DocumentBuilder, playbook: Playbook) -> None:
    b.h(3, "Escalate")
    onsite = playbook.services.onsite
    b.p(
        "Qualify the severity with the table above; if the response or resolution time is "
        "about to be exceeded, escalate to the next level of the provider's escalation path"
        + (
            f"; send a technician on site within {hours_text(onsite.delay_hours)} "
            "when remote action is not enough."
            if onsite
            else "."
        )
    )
