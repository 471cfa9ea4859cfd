"""Contract documents: the facts they must state, escaping, and well-formed standalone HTML."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from handover.bundle.types import MemberRecord
from handover.checklist.model import Evidence
from handover.checklist.store import ChecklistStore
from handover.checklist.templates import draft_checklist
from handover.contract.loader import load_playbook
from handover.contract.phases import Phase
from handover.contract.playbook import Playbook, phase_items
from handover.documents.reports import (
    Document,
    Incident,
    _md_line_start,
    baseline_report,
    checklists_report,
    exit_deadlines,
    exit_report,
    hotline_procedure,
    reversibility_plan,
    runbooks,
    scrub,
    sla_report,
    snapshot_digest,
)
from handover.estate.health import HealthCheckResult
from handover.estate.inventory import (
    Certificate,
    CronEntry,
    Disk,
    Inventory,
    ListeningPort,
    Package,
    Service,
    User,
)

NOW = datetime(2026, 2, 3, 10, 0, tzinfo=UTC)
HOSTILE = "<script>alert('x')</script>"


# A contract of our own (the shipped examples evolve with the demo).
TEST_PLAYBOOK = """\
contract:
  id: demo-estate
  title: Infogérance de démonstration (Demo Estate SARL)
  parties:
    provider:
      legal_name: Handover Services SAS
      registration: SIREN 912 345 678
      contacts:
        - {name: Camille Martin, role: Responsable de compte,
           email: camille.martin@handover.example}
      escalation:
        - {level: 1, name: Hotline, email: support@handover.example, phone: "+33 1 84 88 00 00"}
        - {level: 2, name: Hugo Bernard, email: hugo.bernard@handover.example,
           phone: "+33 1 84 88 00 11", after_minutes: 60}
    client:
      legal_name: Demo Estate SARL
      contacts:
        - {name: Léa Durand, role: Gérante, email: lea.durand@demo-estate.example}
  dates: {signed: 2026-01-05, effective: 2026-02-01, initial_term_months: 24,
          notice_period_months: 3}
perimeter:
  hosts:
    - {name: web01, transport: local, root: .handover/demo/hosts/web01,
       cert_paths: [/etc/ssl/demo], tags: [web]}
    - {name: db01, transport: local, root: .handover/demo/hosts/db01, tags: [db]}
    - {name: files01, transport: local, root: .handover/demo/hosts/files01, tags: [files]}
  datasets:
    - {name: www, host: web01, paths: [/var/www]}
    - {name: etc, host: web01, paths: [/etc]}
    - {name: db, host: db01, dump: {command: "cat /var/backups/db/demo.sql", filename: demo.sql}}
    - {name: shares, host: files01, paths: [/srv/shares]}
  software:
    - {name: nginx, kind: web, version: "1.22", owner: client}
services:
  maintenance: {visits_per_year: 4, window: "Tue 20:00-23:00"}
  hotline: {mode: unlimited, hours: "Mon-Fri 08:00-18:00", channels: [phone, email],
            phone: "+33 1 84 88 00 00", email: support@handover.example}
  onsite: {delay_hours: 8}
  technology_watch: true
sla:
  availability_percent: 99.5
  severities:
    - {level: P1, description: Service arrêté pour tous les utilisateurs, response_minutes: 30,
       resolution_hours: 4}
    - {level: P2, description: Service dégradé, response_minutes: 60, resolution_hours: 8}
    - {level: P4, description: Demande d'évolution ou d'information, response_minutes: 480,
       resolution_hours: 72}
  reporting_period: monthly
  cert_warning_days: 30
security:
  provider_access:
    - host: web01
      account: ops
      public_keys:
        - >-
          ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHSCZ9sbi2CVtTkG0IeeEcWBL3K2zJ9UCicMYeBzAFKm
          ops@provider-demo
      purpose: exploitation et maintenance
reversibility:
  recipients: ["file:.handover/demo/keys/client.recipients"]
  signing_key: file:.handover/demo/keys/provider-signing
  delivery: {kind: local, path: .handover/demo/deliveries}
  deadlines: {notice_months: 2, transition_days: 30, retrieval_days: 30, erasure_days: 30}
  formats:
    - {data: credentials, format: "KeePass KDBX 4"}
  exempted:
    - {category: invoices, reason: kept by the provider for its own accounts,
       legal_basis: "Code de commerce L123-22, 10 ans"}
  software_ownership:
    - {item: runbooks and operating documentation produced for the client, owner: client}
backups:
  target: .handover/demo/backups
  recipients: ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"]
  identity: file:.handover/demo/keys/backup.key
phases:
  takeover:
    waive:
      - {id: credentials-received, reason: "Démo: hôtes locaux, aucun identifiant à recevoir"}
"""


def write_test_playbook(folder: Path) -> Path:
    """Write TEST_PLAYBOOK under `folder` and return its path."""
    path = folder / "demo-estate.yaml"
    path.write_text(TEST_PLAYBOOK, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def playbook(tmp_path_factory: pytest.TempPathFactory) -> Playbook:
    return load_playbook(write_test_playbook(tmp_path_factory.mktemp("playbook")))


def _inventory() -> Inventory:
    return Inventory(
        host="web01",
        collected_at=NOW,
        os_release={"PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)"},
        kernel="6.1.0-18-amd64",
        arch="x86_64",
        hostname="web01",
        package_manager="dpkg",
        packages=[Package(name="nginx", version="1.22.1-9"), Package(name="php7.4", version="7.4")],
        services=[
            Service(name="nginx.service", state="running"),
            Service(name="cron.service", state="failed"),
        ],
        listening=[ListeningPort(proto="tcp", address="0.0.0.0", port=443, process="nginx")],
        disks=[
            Disk(
                mount="/var",
                fstype="ext4",
                size_bytes=20 * 2**30,
                used_bytes=19 * 2**30,
                avail_bytes=2**30,
                used_percent=95.0,
            )
        ],
        users=[
            User(name="root", uid=0, gid=0, home="/root", shell="/bin/bash"),
            User(name="alice", uid=1000, gid=1000, home="/home/alice", shell="/bin/bash"),
            User(name="www-data", uid=33, gid=33, home="/var/www", shell="/usr/sbin/nologin"),
        ],
        cron=[
            CronEntry(
                source="/etc/cron.d/dump",
                line="0 2 * * * root mysqldump -pHunter2Canary acme > /b.sql",
            ),
            CronEntry(source="/etc/crontab", line=f"5 * * * * root echo {HOSTILE}"),
        ],
        certificates=[
            Certificate(
                path="/etc/ssl/demo/www.pem",
                subject=f"CN=www.demo.example {HOSTILE}",
                issuer="CN=Demo CA",
                not_after=NOW + timedelta(days=10),
                days_left=10,
            ),
            Certificate(
                path="/etc/ssl/demo/old.pem",
                subject="CN=old.demo.example",
                issuer="CN=Demo CA",
                not_after=NOW - timedelta(days=3),
                days_left=-3,
            ),
            Certificate(
                path="/etc/ssl/demo/long.pem",
                subject="CN=long.demo.example",
                issuer="CN=Demo CA",
                not_after=NOW + timedelta(days=300),
                days_left=300,
            ),
        ],
        eol_flags=["php 7.4: end of life since 2022-11-28"],
        unreadable=["packages: rpm not found"],
    )


def _members() -> list[MemberRecord]:
    return [
        MemberRecord(path="var/www", type="dir", size=0, mode=0o755, mtime=0),
        MemberRecord(
            path="var/www/index.html",
            size=1200,
            sha256=hashlib.sha256(b"a").hexdigest(),
            mode=0o644,
            mtime=0,
        ),
        MemberRecord(
            path="var/www/app.php",
            size=3000,
            sha256=hashlib.sha256(b"b").hexdigest(),
            mode=0o644,
            mtime=0,
        ),
    ]


class _Checker(HTMLParser):
    """Collects tags, checks nesting and records the title text."""

    VOID = frozenset({"meta", "br", "hr", "img", "link", "input"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.tags: list[str] = []
        self.title = ""
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"unexpected </{tag}> in {self.stack[-3:]}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] == "title":
            self.title += data
        self.text.append(data)


def _check_html(doc: Document) -> _Checker:
    assert doc.html.startswith("<!DOCTYPE html>")
    checker = _Checker()
    checker.feed(doc.html)
    checker.close()
    assert checker.problems == []
    assert checker.stack == []
    assert checker.title == doc.title
    assert "script" not in checker.tags
    for forbidden in ("<link", "src=", "href=", "url(", "@import"):  # no network asset
        assert forbidden not in doc.html
    assert doc.markdown.startswith(f"# {doc.title.split(':')[0]}")
    return checker


def test_baseline_report_states_the_facts(playbook: Playbook) -> None:
    doc = baseline_report(playbook, [_inventory()], {"www": _members()}, NOW)
    md = doc.markdown
    assert doc.name == "baseline-report"
    assert "état des lieux" in doc.title
    assert "Demo Estate SARL" in md and "Handover Services SAS" in md
    assert "Debian GNU/Linux 12 (bookworm)" in md
    assert "`6.1.0-18-amd64`" in md
    assert "- **Installed packages:** 2" in md
    assert "| `cron.service` | **failed** |" in md
    assert "| tcp | `0.0.0.0` | 443 | nginx |" in md
    assert "| `/var` | ext4 | 20.0 GiB | 19.0 GiB | 1.0 GiB | **95%** |" in md
    assert "Accounts (2 login accounts, 1 system)" in md
    # certificates: expired and soon-expiring listed in the summary table, long one not
    section = md.split("## Certificates expired or expiring within 30 days")[1].split("\n## ")[0]
    assert "`/etc/ssl/demo/old.pem`" in section and "**expired**" in section
    assert "`/etc/ssl/demo/www.pem`" in section and "**expires soon**" in section
    assert "long.pem" not in section
    assert "php 7.4: end of life since 2022-11-28" in md
    # datasets: counts, size and the digest that equals sha256(SHA256SUMS)
    sums = "".join(f"{m.sha256}  {m.path}\n" for m in sorted(_members()[1:], key=lambda m: m.path))
    digest = hashlib.sha256(sums.encode()).hexdigest()
    assert snapshot_digest(_members()) == digest
    assert f"| `www` | web01 | 2 | 1 | 4.1 KiB | `{digest}` |" in md
    assert "| `etc` | web01 | — | — | — | **not read** |" in md
    # gaps are listed, never silently dropped
    gaps = md.split("## What could not be read")[1]
    assert "`web01`: packages: rpm not found" in gaps
    assert "`db01`: no inventory" in gaps and "`files01`: no inventory" in gaps
    assert "dataset `shares`: no baseline snapshot" in gaps
    assert "- 3 hosts in the perimeter, 1 inventoried." in md
    assert "- 4 datasets, 1 snapshotted: 2 files, 4.1 KiB." in md
    checker = _check_html(doc)
    assert "Debian GNU/Linux 12 (bookworm)" in "".join(checker.text)


def test_baseline_report_escapes_host_input_and_scrubs_inline_secrets(
    playbook: Playbook,
) -> None:
    doc = baseline_report(playbook, [_inventory()], {}, NOW)
    assert "Hunter2Canary" not in doc.markdown and "Hunter2Canary" not in doc.html
    assert "mysqldump -p*** acme" in doc.markdown
    assert "<script>" not in doc.html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in doc.html
    # in Markdown, raw markup appears only inside code spans, where it is literal text
    assert f"`5 * * * * root echo {HOSTILE}`" in doc.markdown
    assert "<script>" not in re.sub(r"`[^`]*`", "", doc.markdown)
    assert "CN=www.demo.example \\<script\\>" in doc.markdown
    _check_html(doc)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("mysql -uroot -pS3cret db", "mysql -uroot -p*** db"),
        ("curl --password=S3cret x", "curl --password=*** x"),
        ("PGPASSWORD=S3cret pg_dump", "PGPASSWORD=*** pg_dump"),
        ("rclone https://bob:S3cret@host/x", "rclone https://bob:***@host/x"),
        ("curl -H 'Authorization: Bearer S3cret'", "curl -H 'Authorization: Bearer ***"),
        ("tar -cpf /b.tar /etc", "tar -cpf /b.tar /etc"),
    ],
)
def test_scrub_masks_inline_secrets(line: str, expected: str) -> None:
    assert scrub(line) == expected


def test_reversibility_plan_computes_deadlines_from_the_notice(playbook: Playbook) -> None:
    doc = reversibility_plan(playbook, NOW, notice_date=date(2026, 12, 31))
    md = doc.markdown
    assert "| Exit notice received | — | 2026-12-31 |" in md
    assert "| End of notice, switching starts | 2 months | 2027-02-28 |" in md
    assert "| End of transition: bundle delivered | 30 days | 2027-03-30 |" in md
    assert "| End of retrieval period | 30 days | 2027-04-29 |" in md
    assert "| Provider copies erased, certificate issued | 30 days | 2027-05-29 |" in md
    assert "(example)" not in md
    assert "Code de commerce L123-22, 10 ans" in md
    assert "| invoices | kept by the provider for its own accounts |" in md
    assert "`file:.handover/demo/keys/client.recipients`" in md
    assert "`.handover/demo/deliveries`" in md
    assert "KeePass KDBX 4" in md
    assert "| runbooks and operating documentation produced for the client | client |" in md
    assert "SHA256:6tSlLenhk/42CIbjzEFAbLAeFdYkD9o7Ars46YsWYpw" in md  # ssh-keygen -lf
    assert "-n handover-bundle -s SHA256SUMS.sig < SHA256SUMS" in md
    _check_html(doc)


def test_reversibility_plan_without_notice_shows_an_example_and_expanded_recipients(
    playbook: Playbook,
) -> None:
    recipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
    doc = reversibility_plan(playbook, NOW, recipients=[recipient])
    assert "| Step | Delay | Date (example) |" in doc.markdown
    assert "dates are an example for a notice given on 2026-02-03" in doc.markdown
    assert f"| 1 | age X25519 | `{recipient}` |" in doc.markdown
    assert "client.recipients" not in doc.markdown


def test_exit_deadlines_clamp_month_ends(playbook: Playbook) -> None:
    deadlines = playbook.reversibility.deadlines
    result = exit_deadlines(deadlines, date(2028, 12, 31))
    assert result.switching_starts == date(2029, 2, 28)
    result = exit_deadlines(deadlines.model_copy(update={"notice_months": 2}), date(2027, 12, 31))
    assert result.switching_starts == date(2028, 2, 29)
    assert result.erasure_by == result.retrieval_ends + timedelta(days=deadlines.erasure_days)


def test_runbooks_cover_each_host_with_check_restart_restore_escalate(
    playbook: Playbook,
) -> None:
    doc = runbooks(playbook, [_inventory()])
    md = doc.markdown
    for host in ("web01", "db01", "files01"):
        section = md.split(f"## Host {host}")[1].split("\n## ")[0]
        for part in ("### Check", "### Restart", "### Restore from backup", "### Escalate"):
            assert part in section, (host, part)
    web = md.split("## Host web01")[1].split("\n## ")[0]
    assert "`sudo systemctl restart nginx.service`" in web
    assert "volumes/NNNN-web01-www.tar.age | tar -x -C /tmp/restore-www" in web
    assert "Copy the needed files back to `/var/www`" in web
    db = md.split("## Host db01")[1].split("\n## ")[0]
    assert "Load the dump `demo.sql`" in db
    assert "No inventory given" in db
    assert "`file:.handover/demo/keys/backup.key`" in md
    assert "| **P1** | Service arrêté pour tous les utilisateurs | 30 min | 4 h |" in md
    assert "within 8 h" in md
    _check_html(doc)


def test_runbooks_of_ssh_host_prefix_commands(playbook: Playbook) -> None:
    data = playbook.model_dump()
    data["perimeter"]["hosts"][0].update(
        transport="ssh", address="192.0.2.10", port=2222, user="ops", root=None
    )
    remote = Playbook.model_validate(data)
    md = runbooks(remote).markdown
    assert "`ssh -p 2222 ops@192.0.2.10 df -hP`" in md
    assert "`ssh -p 2222 ops@192.0.2.10 true`" in md


def test_hotline_procedure_states_hours_channels_severities_onsite(playbook: Playbook) -> None:
    doc = hotline_procedure(playbook)
    md = doc.markdown
    assert "- **Opening hours:** Mon-Fri 08:00-18:00" in md
    assert "- **Channels:** phone, email" in md
    assert "- **Phone:** +33 1 84 88 00 00" in md
    assert "| **P4** | Demande d'évolution ou d'information | 8 h | 3 d |" in md
    assert "| 2 | Hugo Bernard | hugo.bernard@handover.example | +33 1 84 88 00 11 | 1 h |" in md
    assert "a technician on site within 8 h" in md
    assert "- **Maintenance window:** Tue 20:00-23:00" in md
    assert "99.5%, reported monthly" in md
    _check_html(doc)


def _check(host: str, ok: bool, hours: int, check: str = "reachable") -> HealthCheckResult:
    return HealthCheckResult(
        host=host, check=check, ok=ok, detail="x", at=NOW + timedelta(hours=hours)
    )


def test_sla_report_computes_availability_and_breaches(playbook: Playbook) -> None:
    checks = [_check("web01", True, h) for h in range(199)] + [_check("web01", False, 199)]
    checks += [_check("db01", h % 10 != 0, h) for h in range(100)]  # 90 %
    checks += [_check("files01", True, 1), _check("files01", False, 2, "disk:/srv")]
    checks += [_check("web01", False, -24 * 10)]  # before the period: ignored
    incidents = [
        Incident(
            id="T-1",
            severity="P1",
            summary="site down",
            opened_at=NOW,
            responded_at=NOW + timedelta(minutes=45),
            resolved_at=NOW + timedelta(hours=3),
        ),
        Incident(
            id="T-2",
            severity="P2",
            summary="slow",
            opened_at=NOW,
            responded_at=NOW + timedelta(minutes=20),
            resolved_at=NOW + timedelta(hours=2),
        ),
    ]
    doc = sla_report(playbook, date(2026, 2, 1), date(2026, 2, 28), checks, incidents, NOW)
    md = doc.markdown
    assert "| `web01` | 200 | 199 | 99.50% | **met** |" in md
    assert "| `db01` | 100 | 90 | 90.00% | **breach** |" in md
    assert "| `files01` | 1 | 1 | 100.00% | **met** |" in md
    assert "- **Measured availability:** 96.35%" in md  # 290 / 301 samples
    assert "- **Verdict:** **breached**" in md
    assert "`db01`: availability 90.00% below the 99.5% target" in md
    assert "| `files01` | `disk:/srv` | x |" in md
    assert "45 min (target 30 min) | 3 h (target 4 h) | **breach: response** |" in md
    assert "| `T-2` | P2 | slow |" in md and "2 h (target 8 h) | **met** |" in md
    assert "incident T-1 (P1): response beyond the SLA" in md
    assert "2026-02-01 to 2026-02-28" in doc.title
    checker = _check_html(doc)
    assert 'class="status status-breach"' in doc.html
    assert "99.50%" in "".join(checker.text)


def test_sla_report_without_checks_is_not_measured(playbook: Playbook) -> None:
    md = sla_report(playbook, date(2026, 2, 1), date(2026, 2, 28), []).markdown
    assert "- **Measured availability:** not measured" in md
    assert "- **Verdict:** **not measured**" in md
    assert "`web01`: availability not measured" in md


def test_exit_report_lists_everything_and_the_open_points(
    playbook: Playbook, tmp_path: Path
) -> None:
    store = ChecklistStore(tmp_path)
    contract = playbook.contract.id
    store.open(contract, Phase.REVERSIBILITY, phase_items(playbook, "reversibility"))
    for item in ("exit-notice", "bundle-sealed"):
        store.start(contract, Phase.REVERSIBILITY, item, "flow")
        store.complete(
            contract,
            Phase.REVERSIBILITY,
            item,
            "flow",
            [Evidence(kind="bundle", path="/b/SHA256SUMS", sha256="d" * 64)],
        )
    store.start(contract, Phase.REVERSIBILITY, "access-revoked", "flow")
    store.fail(contract, Phase.REVERSIBILITY, "access-revoked", "flow", "web01: permission denied")
    store.start(contract, Phase.REVERSIBILITY, "exit-report", "flow")
    checklist = store.load(contract, Phase.REVERSIBILITY)
    takeover = draft_checklist(contract, Phase.TAKEOVER, phase_items(playbook, "takeover"))
    doc = exit_report(
        playbook,
        bundle_summary={
            "location": "/deliveries/demo-estate/bundle",
            "sha256sums_sha256": "e" * 64,
            "total_bytes": 123456789,
            "volumes": [{"file": "volumes/0001-web01-www.tar.age", "sha256": "c" * 64}],
        },
        deliveries=[{"kind": "local", "path": "/deliveries/demo-estate", "at": NOW}],
        acceptance={"accepted": True, "by": "Léa Durand", "comment": f"OK {HOSTILE}"},
        revocations=[{"host": "web01", "account": "ops", "ok": False, "password": "Canary42"}],
        erasure=None,
        checklists=[takeover, checklist],
        generated_at=NOW,
    )
    md = doc.markdown
    assert "- **Location:** `/deliveries/demo-estate/bundle`" in md
    assert "117.7 MiB (123456789 bytes)" in md
    assert "| `volumes/0001-web01-www.tar.age` | `" + "c" * 64 + "` |" in md
    assert "- **Accepted:** yes" in md and "- **By:** Léa Durand" in md
    assert "Canary42" not in md and "Canary42" not in doc.html
    assert "| web01 | ops | no | \\*\\*\\* |" in md
    assert "| `bundle-sealed` |" in md and "SHA256SUMS (dddddddddddd)" in md
    assert "**incomplete** 2 done, 0 waived, 1 failed, 1 running, 7 pending (version 8)." in md
    open_points = md.split("## Open points")[1]
    assert "Access revocation failed: web01" in open_points
    assert "Erasure of provider copies pending." in open_points
    assert "reversibility: `access-revoked` is failed: web01: permission denied" in open_points
    assert "`exit-report`" not in open_points  # the report being written is not an open point
    assert "takeover: `credentials-received`" not in open_points  # waived in the demo playbook
    assert "> **Warning:** **incomplete**" in md.split("## Restitution bundle")[0]
    assert "<script>" not in doc.html
    _check_html(doc)


def test_exit_report_complete_when_everything_is_recorded(
    playbook: Playbook, tmp_path: Path
) -> None:
    store = ChecklistStore(tmp_path)
    contract = playbook.contract.id
    items = [{"id": "bundle-sealed", "title": "Sealed"}, {"id": "exit-report", "title": "Report"}]
    store.open(contract, Phase.REVERSIBILITY, items)
    store.start(contract, Phase.REVERSIBILITY, "bundle-sealed", "flow")
    store.complete(contract, Phase.REVERSIBILITY, "bundle-sealed", "flow", [])
    store.start(contract, Phase.REVERSIBILITY, "exit-report", "flow")
    doc = exit_report(
        playbook,
        {"location": "/b"},
        [{"kind": "local", "path": "/d"}],
        {"accepted": True},
        [{"host": h, "ok": True} for h in ("web01", "db01", "files01")],
        {"certificate": "/d/erasure.txt", "erased_at": NOW},
        [store.load(contract, Phase.REVERSIBILITY)],
        NOW,
    )
    assert "None: the exit is complete." in doc.markdown
    assert "**complete** Every exit step is done and recorded." in doc.markdown


def test_document_write_is_atomic_and_writes_both_forms(playbook: Playbook, tmp_path: Path) -> None:
    doc = hotline_procedure(playbook)
    paths = doc.write(tmp_path / "docs")
    assert [p.name for p in paths] == ["hotline-procedure.md", "hotline-procedure.html"]
    assert paths[0].read_text() == doc.markdown and paths[1].read_text() == doc.html
    assert sorted(p.name for p in (tmp_path / "docs").iterdir()) == [
        "hotline-procedure.html",
        "hotline-procedure.md",
    ]


def test_markdown_escapes_line_starts_and_table_pipes(playbook: Playbook) -> None:
    data = playbook.model_dump()
    data["reversibility"]["exempted"] = [
        {"category": "a|b", "reason": "# not a heading", "legal_basis": "1. not a list"}
    ]
    doc = reversibility_plan(Playbook.model_validate(data), NOW)
    assert "| a\\|b | # not a heading | 1. not a list |" in doc.markdown


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# title", "\\# title"),
        ("- item", "\\- item"),
        ("2026. a year", "2026\\. a year"),
        ("> quote", "\\> quote"),
        ("plain 1. text", "plain 1. text"),
    ],
)
def test_markdown_line_starts_are_escaped(text: str, expected: str) -> None:
    assert _md_line_start(text) == expected


def test_checklists_report_lists_every_phase_and_open_items(
    playbook: Playbook, tmp_path: Path
) -> None:
    store = ChecklistStore(tmp_path)
    contract = playbook.contract.id
    store.open(contract, Phase.TAKEOVER, phase_items(playbook, "takeover"))
    store.start(contract, Phase.TAKEOVER, "inventory", "flow")
    store.fail(contract, Phase.TAKEOVER, "inventory", "flow", "db01: unreachable")
    implementation = draft_checklist(
        contract, Phase.IMPLEMENTATION, phase_items(playbook, "implementation")
    )
    doc = checklists_report(playbook, [store.load(contract, Phase.TAKEOVER), implementation], NOW)
    md = doc.markdown
    assert doc.name == "checklists"
    assert "## Takeover" in md and "## Implementation" in md
    assert "| `credentials-received` |" in md and "Démo: hôtes locaux" in md
    assert "- takeover: `inventory` is failed: db01: unreachable" in md
    assert "- implementation: `runbooks` is pending" in md
    _check_html(doc)


def test_exit_report_hides_presigned_signatures_and_shows_certificates_as_text(
    playbook: Playbook,
) -> None:
    link = (
        "https://s3.example/bucket/b/SHA256SUMS?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIDEXAMPLE&X-Amz-Signature=deadbeefcafe"
    )
    certificate = "ERASURE CERTIFICATE\nContract: demo-estate\nErased: 3 volumes\n"
    deadlines = exit_deadlines(playbook.reversibility.deadlines, date(2026, 3, 1))
    doc = exit_report(
        playbook,
        {"location": "s3://bucket/b", "deadlines": deadlines},
        [{"kind": "s3", "links": [link]}],
        None,
        [],
        {"certificate": certificate, "erased_at": NOW},
        [],
        NOW,
    )
    assert "deadbeefcafe" not in doc.markdown and "deadbeefcafe" not in doc.html
    assert "AKIDEXAMPLE" not in doc.markdown
    assert "https://s3.example/bucket/b/SHA256SUMS (presigned link; signature left out)" in (
        doc.markdown
    )
    assert "```\nERASURE CERTIFICATE\nContract: demo-estate\nErased: 3 volumes\n```" in doc.markdown
    assert "<pre><code>ERASURE CERTIFICATE\nContract: demo-estate" in doc.html
    assert "retrieval_ends: 2026-06-30" in doc.markdown
    assert "Client acceptance not received." in doc.markdown
    _check_html(doc)
