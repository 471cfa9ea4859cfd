"""Shared inputs of the document tests: a test playbook, a host inventory, a snapshot, and
the checks every rendered HTML page must pass.

The playbook is our own (the shipped examples evolve with the demo); the
checklist tests load it too.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from handover.bundle.types import MemberRecord
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.documents.document import Document
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


def load_test_playbook(tmp_path_factory: pytest.TempPathFactory) -> Playbook:
    """TEST_PLAYBOOK loaded from a fresh folder (each test module's `playbook` fixture)."""
    return load_playbook(write_test_playbook(tmp_path_factory.mktemp("playbook")))


def in_language(playbook: Playbook, language: str, timezone: str = "UTC") -> Playbook:
    """The same playbook with its documents in `language` and moments in `timezone`.

    TEST_PLAYBOOK leaves the defaults (French, Europe/Paris); the tests that
    read sentences in English render with `language: en` through this.
    """
    contract = playbook.contract.model_copy(update={"language": language, "timezone": timezone})
    return playbook.model_copy(update={"contract": contract})


def sample_inventory() -> Inventory:
    """web01 with a failed service, a full disk, a secret in cron and hostile certificate text."""
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


def sample_members() -> list[MemberRecord]:
    """A directory and two files, as a baseline snapshot records them."""
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


def check_html(doc: Document) -> _Checker:
    """Well-formed standalone HTML titled like the Markdown, without script or network asset."""
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
