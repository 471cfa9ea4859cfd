"""Baseline report (état des lieux): the facts it states, gaps listed, host input escaped."""

from __future__ import annotations

import hashlib
import re

import pytest

from handover.bundle.snapshot import snapshot_digest
from handover.contract.playbook import Playbook
from handover.documents.baseline_report import baseline_report
from tests.unit.documents_fixtures import (
    HOSTILE,
    NOW,
    check_html,
    in_language,
    load_test_playbook,
    sample_inventory,
    sample_members,
)


@pytest.fixture(scope="module")
def playbook(tmp_path_factory: pytest.TempPathFactory) -> Playbook:
    """In English (the French rendering is tested in test_documents_language)."""
    return in_language(load_test_playbook(tmp_path_factory), "en")


def test_baseline_report_states_the_facts(playbook: Playbook) -> None:
    doc = baseline_report(playbook, [sample_inventory()], {"www": sample_members()}, NOW)
    md = doc.markdown
    assert doc.name == "baseline-report"
    assert doc.title.startswith("Baseline report: ")
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
    sums = "".join(
        f"{m.sha256}  {m.path}\n" for m in sorted(sample_members()[1:], key=lambda m: m.path)
    )
    digest = hashlib.sha256(sums.encode()).hexdigest()
    assert snapshot_digest(sample_members()) == digest
    assert f"| `www` | web01 | 2 | 1 | 4.1 KiB | `{digest}` |" in md
    assert "| `etc` | web01 | — | — | — | **not read** |" in md
    # gaps are listed, never silently dropped
    gaps = md.split("## What could not be read")[1]
    assert "`web01`: packages: rpm not found" in gaps
    assert "`db01`: no inventory" in gaps and "`files01`: no inventory" in gaps
    assert "dataset `shares`: no baseline snapshot" in gaps
    assert "- 3 hosts in the perimeter, 1 inventoried." in md
    assert "- 4 datasets, 1 snapshotted: 2 files, 4.1 KiB." in md
    checker = check_html(doc)
    assert "Debian GNU/Linux 12 (bookworm)" in "".join(checker.text)


def test_baseline_report_escapes_host_input_and_scrubs_inline_secrets(
    playbook: Playbook,
) -> None:
    doc = baseline_report(playbook, [sample_inventory()], {}, NOW)
    assert "Hunter2Canary" not in doc.markdown and "Hunter2Canary" not in doc.html
    assert "mysqldump -p*** acme" in doc.markdown
    assert "<script>" not in doc.html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in doc.html
    # in Markdown, raw markup appears only inside code spans, where it is literal text
    assert f"`5 * * * * root echo {HOSTILE}`" in doc.markdown
    assert "<script>" not in re.sub(r"`[^`]*`", "", doc.markdown)
    assert "CN=www.demo.example \\<script\\>" in doc.markdown
    check_html(doc)
