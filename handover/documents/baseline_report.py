"""The baseline report (état des lieux) of the takeover: what the provider took over.

It records every host's facts and every dataset's snapshot digest on day
one, and lists what could not be read instead of leaving it out: it is the
reference the exit inventory is compared with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from handover.bundle.snapshot import snapshot_digest
from handover.bundle.types import MemberRecord
from handover.documents.blocks import Inline, badge, code, join_codes, strong
from handover.documents.builder import DocumentBuilder
from handover.documents.client_documents import client_documents_section
from handover.documents.document import Document
from handover.documents.formatting import scrub
from handover.documents.sections import header_fields, parties_section, perimeter_section
from handover.i18n import Texts
from handover.i18n.recorded import eol_flag_text
from handover.sizes import size_text

if TYPE_CHECKING:
    from handover.contract.playbook import Playbook
    from handover.estate.client_documents import ClientDocumentsIndex
    from handover.estate.inventory import Certificate, Inventory

Snapshots = Mapping[str, Sequence[MemberRecord] | None]


def baseline_report(
    playbook: Playbook,
    inventories: Sequence[Inventory],
    snapshots: Mapping[str, Sequence[MemberRecord]],
    generated_at: datetime,
    client_documents: ClientDocumentsIndex | None = None,
) -> Document:
    """The baseline report (état des lieux) of the takeover.

    `snapshots` maps dataset names (or `<host>-<dataset>` labels) to the
    members recorded by the baseline snapshot. Hosts without an inventory
    and datasets without a snapshot are listed as not read, never omitted.
    """
    warn_days = playbook.sla.cert_warning_days
    snap = {d.name: _find_snapshot(snapshots, d.name, d.host) for d in playbook.perimeter.datasets}
    expiring = _expiring_certificates(inventories, warn_days)
    eol = [(inv.host, flag) for inv in inventories for flag in inv.eol_flags]
    b = DocumentBuilder(Texts.for_contract(playbook.contract))
    t = b.t
    unread = _unreadable(t, playbook, inventories, snap)
    header_fields(b, playbook, generated_at)
    b.p(
        t._(
            "This report records the state of the client's systems when the provider took "
            "them over: what exists, in which state, and what could not be read. It is the "
            "reference against which the exit inventory is compared."
        ),
        "note",
    )
    _summary(b, playbook, inventories, snap, len(expiring), len(eol), len(unread))
    parties_section(b, playbook)
    perimeter_section(b, playbook)
    _certificates_section(b, expiring, warn_days)
    b.h(2, t._("End-of-life software"))
    b.table(
        [t._("Host"), t._("Finding")],
        [[code(h), eol_flag_text(t, flag)] for h, flag in eol],
        t._("No end-of-life software found."),
    )
    _hosts_section(b, playbook, inventories)
    _datasets_section(b, playbook, snap)
    client_documents_section(b, playbook, client_documents)  # the client's own documents
    b.h(2, t._("What could not be read"))
    b.bullets(unread, empty=t._("Everything listed in the perimeter was read."))
    title = t._("Baseline report: {title}", title=playbook.contract.title)
    return b.document("baseline-report", title)


def _find_snapshot(
    snapshots: Mapping[str, Sequence[MemberRecord]], name: str, host: str | None
) -> Sequence[MemberRecord] | None:
    if name in snapshots:
        return snapshots[name]
    if host and f"{host}-{name}" in snapshots:
        return snapshots[f"{host}-{name}"]
    return None


def _file_count(members: Sequence[MemberRecord]) -> int:
    return sum(1 for m in members if m.type == "file")


def _total_size(members: Sequence[MemberRecord]) -> int:
    return sum(m.size for m in members if m.type == "file")


def _expiring_certificates(
    inventories: Sequence[Inventory], warn_days: int
) -> list[tuple[str, Certificate]]:
    return [
        (inv.host, cert)
        for inv in inventories
        for cert in inv.certificates
        if cert.days_left < warn_days
    ]


def _unreadable(
    t: Texts, playbook: Playbook, inventories: Sequence[Inventory], snap: Snapshots
) -> list[Inline]:
    by_host = {inv.host: inv for inv in inventories}
    lines: list[Inline] = []
    for host in playbook.perimeter.hosts:
        inv = by_host.get(host.name)
        if inv is None:
            lines.append(
                [code(host.name), ": " + t._("no inventory (host not reached or not collected)")]
            )
            continue
        lines += [[code(host.name), f": {scrub(item)}"] for item in inv.unreadable]
    for name, members in snap.items():
        if members is None:
            lines.append([t._("dataset") + " ", code(name), ": " + t._("no baseline snapshot")])
    return lines


def _summary(
    b: DocumentBuilder,
    playbook: Playbook,
    inventories: Sequence[Inventory],
    snap: Snapshots,
    expiring: int,
    eol: int,
    unread: int,
) -> None:
    read = [m for m in snap.values() if m is not None]
    files = sum(_file_count(m) for m in read)
    volume = sum(_total_size(m) for m in read)
    inventoried_hosts = {inv.host for inv in inventories}
    inventoried = sum(1 for h in playbook.perimeter.hosts if h.name in inventoried_hosts)
    warn_days = playbook.sla.cert_warning_days
    t = b.t
    hosts = len(playbook.perimeter.hosts)
    b.h(2, t._("Summary"))
    b.bullets(
        [
            t.n_(
                "{n} host in the perimeter, {inventoried} inventoried.",
                "{n} hosts in the perimeter, {inventoried} inventoried.",
                hosts,
                inventoried=inventoried,
            ),
            t.n_(
                "{n} dataset, {read} snapshotted: {files}, {size}.",
                "{n} datasets, {read} snapshotted: {files}, {size}.",
                len(snap),
                read=len(read),
                files=t.n_("{n} file", "{n} files", files),
                size=size_text(volume),
            ),
            t.n_(
                "{n} certificate expired or expiring within {days} days.",
                "{n} certificates expired or expiring within {days} days.",
                expiring,
                days=warn_days,
            ),
            t.n_("{n} end-of-life finding.", "{n} end-of-life findings.", eol),
            t.n_("{n} fact could not be read.", "{n} facts could not be read.", unread),
        ]
    )


def _certificates_section(
    b: DocumentBuilder, expiring: Sequence[tuple[str, Certificate]], warn_days: int
) -> None:
    t = b.t
    b.h(2, t._("Certificates expired or expiring within {days} days", days=warn_days))
    b.table(
        [
            t._("Host"),
            t._("Certificate"),
            t._("Subject"),
            t._("Expires"),
            t._("Days left"),
            t._("State"),
        ],
        [
            [
                code(host),
                code(cert.path),
                cert.subject,
                t.date(cert.not_after),
                str(cert.days_left),
                badge(t._("expired"), "expired")
                if cert.days_left < 0
                else badge(t._("expires soon"), "soon"),
            ]
            for host, cert in sorted(expiring, key=lambda hc: hc[1].days_left)
        ],
        t._("No certificate expires soon."),
    )


def _hosts_section(
    b: DocumentBuilder, playbook: Playbook, inventories: Sequence[Inventory]
) -> None:
    """Each perimeter host's facts (or why there are none), then inventories of other hosts."""
    sla = playbook.sla
    by_host = {inv.host: inv for inv in inventories}
    t = b.t
    b.h(2, t._("Hosts"))
    for host in playbook.perimeter.hosts:
        inv = by_host.get(host.name)
        b.h(3, host.name)
        if inv is None:
            b.p(
                t._(
                    "Host {host} was not inventoried: no facts are recorded for it.",
                    host=host.name,
                ),
                "warning",
            )
            continue
        _host_facts(b, inv, sla.disk_threshold_percent, sla.cert_warning_days)
    for inv in inventories:
        if inv.host not in {h.name for h in playbook.perimeter.hosts}:
            b.h(3, t._("{host} (not in the playbook's perimeter)", host=inv.host))
            _host_facts(b, inv, sla.disk_threshold_percent, sla.cert_warning_days)


def _dataset_row(
    t: Texts, name: str, host: str | None, members: Sequence[MemberRecord] | None
) -> list[Inline]:
    if members is None:
        return [code(name), host or "S3", "—", "—", "—", badge(t._("not read"), "failed")]
    dirs = sum(1 for m in members if m.type == "dir")
    return [
        code(name),
        host or "S3",
        str(_file_count(members)),
        str(dirs),
        size_text(_total_size(members)),
        code(snapshot_digest(members)),
    ]


def _datasets_section(b: DocumentBuilder, playbook: Playbook, snap: Snapshots) -> None:
    t = b.t
    b.h(2, t._("Datasets (baseline snapshot)"))
    b.table(
        [
            t._("Dataset"),
            t._("Host"),
            t._("Files"),
            t._("Directories"),
            t._("Size"),
            t._("Snapshot digest (SHA-256)"),
        ],
        [_dataset_row(t, d.name, d.host, snap[d.name]) for d in playbook.perimeter.datasets],
    )
    b.p(
        [
            t._("The snapshot digest is the SHA-256 of the dataset's") + " ",
            code("SHA256SUMS"),
            " "
            + t._(
                "(every file's SHA-256, sorted by path). After extracting the same dataset "
                "from a restitution bundle,"
            )
            + " ",
            code("sha256sum SHA256SUMS"),
            " " + t._("prints the same digest if no file changed since this baseline."),
        ],
        "note",
    )


# --------------------------------------------------------------------------- one host's facts


def _host_facts(b: DocumentBuilder, inv: Inventory, disk_threshold: float, warn_days: int) -> None:
    """One host's inventory: system, services, ports, disks, accounts, cron, certificates."""
    t = b.t
    b.fields(
        [
            (t._("Operating system"), inv.os_name or t._("unknown")),
            (t._("Kernel"), code(inv.kernel) if inv.kernel else None),
            (t._("Architecture"), inv.arch or None),
            (t._("Host name"), code(inv.hostname) if inv.hostname else None),
            (t._("Package manager"), inv.package_manager or t._("none found")),
            (t._("Installed packages"), str(len(inv.packages))),
            (t._("Collected"), t.datetime(inv.collected_at)),
        ]
    )
    _services(b, inv)
    _listening_ports(b, inv)
    _disks(b, inv, disk_threshold)
    _accounts(b, inv)
    b.h(4, t._("Scheduled tasks (cron)"))
    b.table(
        [t._("Source"), t._("Entry")],
        [[code(c.source), code(scrub(c.line))] for c in inv.cron],
        t._("No cron entry."),
    )
    _certificates(b, inv, warn_days)
    if inv.eol_flags:
        b.p(
            [t._("End of life:") + " ", "; ".join(eol_flag_text(t, f) for f in inv.eol_flags)],
            "warning",
        )
    if inv.unreadable:
        b.p(strong(t._("Not readable on this host")))
        b.bullets([scrub(u) for u in inv.unreadable])


def _services(b: DocumentBuilder, inv: Inventory) -> None:
    """Running services by name; failed ones in a table of their own."""
    running = sorted(s.name for s in inv.services if s.state in ("running", "active"))
    other = [s for s in inv.services if s.state not in ("running", "active")]
    t = b.t
    b.h(
        4,
        t._(
            "Services ({running} running of {total})", running=len(running), total=len(inv.services)
        ),
    )
    if running:
        b.p([t._("Running:") + " ", *join_codes(running)])
    failed = [s for s in other if s.state in ("failed", "dead", "crashed", "error")]
    if failed:
        b.table(
            [t._("Service"), t._("State")],
            [
                [code(s.name), badge(s.state, "failed")]
                for s in sorted(failed, key=lambda s: s.name)
            ],
        )


def _listening_ports(b: DocumentBuilder, inv: Inventory) -> None:
    t = b.t
    b.h(4, t._("Listening ports"))
    b.table(
        [t._("Protocol"), t._("Address"), t._("Port"), t._("Process")],
        [
            [p.proto, code(p.address), str(p.port), scrub(p.process) if p.process else "—"]
            for p in sorted(inv.listening, key=lambda p: (p.proto, p.port, p.address))
        ],
        t._("No listening port seen."),
    )


def _disks(b: DocumentBuilder, inv: Inventory, disk_threshold: float) -> None:
    t = b.t
    b.h(4, t._("Disks"))
    b.table(
        [t._("Mount"), t._("Filesystem"), t._("Size"), t._("Used"), t._("Free"), t._("Use")],
        [
            [
                code(d.mount),
                d.fstype,
                size_text(d.size_bytes),
                size_text(d.used_bytes),
                size_text(d.avail_bytes),
                badge(t.percent(d.used_percent, 0), "breach")
                if d.used_percent >= disk_threshold
                else t.percent(d.used_percent, 0),
            ]
            for d in inv.disks
        ],
        t._("No disk seen."),
    )


def _accounts(b: DocumentBuilder, inv: Inventory) -> None:
    """Login accounts listed one by one; system accounts only counted."""
    humans = [u for u in inv.users if u.is_human]
    system = len(inv.users) - len(humans)
    t = b.t
    b.h(
        4,
        t.n_(
            "Accounts ({n} login account, {system} system)",
            "Accounts ({n} login accounts, {system} system)",
            len(humans),
            system=system,
        ),
    )
    b.table(
        [t._("Account"), "UID", t._("Home"), t._("Shell")],
        [[code(u.name), str(u.uid), code(u.home), code(u.shell)] for u in humans],
        t._("No login account."),
    )


def _certificates(b: DocumentBuilder, inv: Inventory, warn_days: int) -> None:
    t = b.t
    b.h(4, t._("Certificates"))
    b.table(
        [t._("Path"), t._("Subject"), t._("Issuer"), t._("Expires"), t._("Days left")],
        [
            [
                code(c.path),
                c.subject,
                c.issuer,
                t.date(c.not_after),
                badge(str(c.days_left), "expired" if c.days_left < 0 else "soon")
                if c.days_left < warn_days
                else str(c.days_left),
            ]
            for c in sorted(inv.certificates, key=lambda c: c.days_left)
        ],
        t._("No certificate found under the configured paths."),
    )
