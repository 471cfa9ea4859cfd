"""The operational run's appended state through a real PostgreSQL shared by workers.

Workers are processes with a HANDOVER_HOME each and the same
`HANDOVER_STATE_URL`: the health samples (one journal a month), the alert
ledger (a blob changed by compare-and-set) and the schedules record (a blob
per contract) written by one are what the others read. The store's own
checks (journal and blob names) run on both stores (`store_kind`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from handover.errors import UsageError
from handover.estate.health_checks import HealthSample
from handover.operations.alert_ledger import claim, read_sent
from handover.operations.alerts import Alert
from handover.operations.health_samples import SampleStore, journal_name
from handover.operations.schedules import (
    SCHEDULES_FILE,
    ScheduleRecord,
    load_schedules,
    record_schedule,
)
from handover.phases import Phase
from handover.state.home import handover_home
from handover.state.layout import ContractPaths
from handover.state.postgres import PostgresStore
from handover.state.shared_blob import STORE_KEPT_GLOBS
from handover.state.store import ContractStore, check_journal_name

pytestmark = pytest.mark.integration

C = "acme-infogerance"
NOV = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)


def sample(at: datetime, check: str = "web01-reachable", ok: bool = True) -> HealthSample:
    return HealthSample(
        at=at,
        check=check,
        service="web01",
        host="web01",
        kind="reachable",
        ok=ok,
        detail="answered",
        interval_s=300,
    )


def _worker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, url: str | None) -> None:
    """This process becomes worker `name`: a home of its own, the database `url` (None: none)."""
    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / name / ".handover"))
    if url is None:
        monkeypatch.delenv("HANDOVER_STATE_URL", raising=False)
    else:
        monkeypatch.setenv("HANDOVER_STATE_URL", url)


def _health() -> SampleStore:
    """The contract's sample store as the health flow and the SLA report open it."""
    from tasks.health import sample_store

    return sample_store(C)


def _health_dir() -> Path:
    return ContractPaths(C).phase_dir(Phase.OPERATIONAL) / "health"


# -- names the stores accept ------------------------------------------------------------------


def test_a_months_sample_journal_is_a_journal_name_and_nothing_else_is(
    state: ContractStore,
) -> None:
    assert check_journal_name("health-samples-2026-11") == "health-samples-2026-11"
    assert journal_name("2026-11") == "health-samples-2026-11"
    for bad in ("health-samples-2026-13", "health-samples-2026-11/../x", "health-samples-26-1"):
        with pytest.raises(UsageError, match="health-samples-YYYY-MM"):
            check_journal_name(bad)
    journal = state.journal(C, "health-samples-2026-11")
    if isinstance(state, PostgresStore):
        assert journal is not None
        journal.append(b"one")
        assert state.journal(C, "health-samples-2026-12").lines() == []  # type: ignore[union-attr]
        assert journal.lines() == [b"one"]
        with pytest.raises(UsageError):
            state.journal(C, "health-samples-2026-00")
    else:
        assert journal is None  # the local store: the month's file, as before
    assert state.read_blob(C, "alerts-sent.json") is None
    state.write_blob(C, "alerts-sent.json", b"{}")
    assert state.read_blob(C, "alerts-sent.json") == b"{}"


def test_store_kept_globs_name_the_operational_state() -> None:
    for kept in (
        "operational/health/samples-*.jsonl",
        "operational/alerts-sent.json",
        "known_hosts",
        "vault.age",
        "incidents.jsonl",
    ):
        assert kept in STORE_KEPT_GLOBS
    assert all(not g.startswith("/") and "\\" not in g for g in STORE_KEPT_GLOBS)


# -- health samples -------------------------------------------------------------------------

APPENDER = r"""
import os, sys, time
from datetime import datetime, timedelta, UTC
from handover.estate.health_checks import HealthSample
from tasks.health import sample_store

name, go, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
deadline = time.monotonic() + 120
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("no go signal")
    time.sleep(0.01)
start = datetime(2026, 11, 1, tzinfo=UTC)
store = sample_store("acme-infogerance")
for n in range(count):
    at = start + timedelta(minutes=5 * n)
    store.append([HealthSample(at=at, check=f"{name}-{k}", service="s", host=None,
                               kind="tcp", ok=True, detail=f"{name} {n}", interval_s=300)
                  for k in range(2)])
print("done", flush=True)
"""


def test_two_workers_appending_samples_at_once_lose_none(
    pg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    workers: list[subprocess.Popen[str]],
) -> None:
    go, count = tmp_path / "go", 40
    for name in ("w1", "w2"):
        env = {**os.environ, "HANDOVER_HOME": str(tmp_path / name / ".handover")}
        env["HANDOVER_STATE_URL"] = pg_url
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", APPENDER, name, str(go), str(count)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=Path(__file__).resolve().parents[2],
            )
        )
    go.touch()
    for process in workers:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-2000:]
        assert out.strip() == "done"

    _worker(monkeypatch, tmp_path, "reader", pg_url)  # a third worker, the SLA report's
    start = datetime(2026, 11, 1, tzinfo=UTC)
    read = _health().read(start, start + timedelta(days=30))
    assert read.unreadable_lines == 0
    got = sorted((s.check, s.detail) for s in read.samples)
    assert got == sorted(
        (f"{w}-{k}", f"{w} {n}") for w in ("w1", "w2") for n in range(count) for k in range(2)
    )
    lines = PostgresStore(pg_url).journal(C, "health-samples-2026-11").lines()
    assert len(lines) == 2 * count * 2
    for name in ("w1", "w2"):  # no worker wrote a file of its own
        assert not (tmp_path / name / ".handover" / "contracts" / C / "operational").exists()


def test_the_sla_reader_sees_samples_another_worker_took(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _worker(monkeypatch, tmp_path, "a", pg_url)
    assert _health().append([sample(NOV), sample(NOV + timedelta(hours=4), ok=False)]) == 2
    assert not _health_dir().exists()

    _worker(monkeypatch, tmp_path, "b", pg_url)
    bad: list[int] = []
    seen = list(_health().iter(NOV - timedelta(days=1), NOV + timedelta(days=2), bad))
    assert [(s.at, s.ok) for s in seen] == [(NOV, True), (NOV + timedelta(hours=4), False)]
    assert bad == []
    # The month after is its own journal; `last_taken` (the health flow's) reads across.
    assert _health().last_taken(NOV + timedelta(hours=4, minutes=3), timedelta(hours=1)) == {
        "web01-reachable": NOV + timedelta(hours=4)
    }

    _worker(monkeypatch, tmp_path, "c", None)  # a worker on its own folder sees none of them
    assert _health().read(NOV - timedelta(days=1), NOV + timedelta(days=2)).samples == []


def test_a_workers_file_from_before_the_store_is_merged_once(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _worker(monkeypatch, tmp_path, "a", None)
    _health().append([sample(NOV), sample(NOV + timedelta(minutes=5))])
    local = _health().path("2026-11")
    with local.open("ab") as handle:
        handle.write(b'{"torn":')  # a crash's torn tail: not a sample, not merged
    _worker(monkeypatch, tmp_path, "a", pg_url)
    _health().append([sample(NOV + timedelta(minutes=10))])
    first = _health().read(NOV, NOV + timedelta(hours=1))
    assert [s.at.minute for s in first.samples] == [0, 5, 10]
    assert not local.exists() and local.with_name(local.name + ".in-store").exists()
    again = _health().read(NOV, NOV + timedelta(hours=1))
    assert [s.at.minute for s in again.samples] == [0, 5, 10]  # not merged twice
    assert len(PostgresStore(pg_url).journal(C, journal_name("2026-11")).lines()) == 3


def test_samples_stay_files_on_the_local_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _worker(monkeypatch, tmp_path, "a", None)
    assert _health().append([sample(NOV)]) == 1
    assert sorted(p.name for p in _health_dir().iterdir()) == ["samples-2026-11.jsonl"]
    assert [s.at for s in _health().read(NOV, NOV + timedelta(hours=1)).samples] == [NOV]


# -- the alert ledger -----------------------------------------------------------------------

CLAIMER = r"""
import os, sys, time
from datetime import datetime, timedelta, UTC
from handover.operations.alert_ledger import claim
from handover.operations.alerts import Alert
from tasks.alerts import ledger_path

go, rounds = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 120
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("no go signal")
    time.sleep(0.01)
now = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)
for n in range(rounds):
    alert = Alert(kind="disk-threshold", contract="acme-infogerance", subject=f"web01:/{n}",
                  severity="warning", message="full")
    got = claim(ledger_path("acme-infogerance"), [alert], now, timedelta(hours=4))
    print(f"{n} {len(got)}", flush=True)
"""


def test_two_workers_claiming_the_same_alerts_each_claim_is_won_once(
    pg_url: str, tmp_path: Path, workers: list[subprocess.Popen[str]]
) -> None:
    go, rounds = tmp_path / "go", 25
    for name in ("w1", "w2"):
        env = {**os.environ, "HANDOVER_HOME": str(tmp_path / name / ".handover")}
        env["HANDOVER_STATE_URL"] = pg_url
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", CLAIMER, str(go), str(rounds)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=Path(__file__).resolve().parents[2],
            )
        )
    go.touch()
    claimed = {n: 0 for n in range(rounds)}
    for process in workers:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-2000:]
        for line in out.splitlines():
            n, got = line.split()
            claimed[int(n)] += int(got)
    assert claimed == {n: 1 for n in range(rounds)}  # each alert sent once, by one worker
    stored = json.loads(PostgresStore(pg_url).read_blob(C, "alerts-sent.json") or b"{}")
    assert sorted(stored) == sorted(f"disk-threshold:web01:/{n}" for n in range(rounds))


def test_the_ledger_is_the_stores_blob_for_every_worker(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks.alerts import ledger_path

    alert = Alert(
        kind="disk-threshold",
        contract=C,
        subject="web01:/",
        severity="warning",
        message="full",
    )
    _worker(monkeypatch, tmp_path, "a", pg_url)
    assert claim(ledger_path(C), [alert], NOV, timedelta(hours=4)) == [alert]
    assert not ledger_path(C).exists()  # no file: the blob is the ledger
    _worker(monkeypatch, tmp_path, "b", pg_url)
    assert read_sent(ledger_path(C)) == {alert.key: NOV}
    assert claim(ledger_path(C), [alert], NOV + timedelta(hours=1), timedelta(hours=4)) == []
    later = NOV + timedelta(hours=5)
    assert claim(ledger_path(C), [alert], later, timedelta(hours=4)) == [alert]
    _worker(monkeypatch, tmp_path, "c", None)  # the local store: its own file, as before
    assert claim(ledger_path(C), [alert], NOV, timedelta(hours=4)) == [alert]
    assert json.loads(ledger_path(C).read_bytes()) == {alert.key: NOV.isoformat()}


# -- the schedules record ------------------------------------------------------------------


def test_a_schedule_recorded_on_one_worker_is_read_on_another(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = ScheduleRecord(playbook_path="/srv/playbooks/acme.yaml", work_pool="handover")
    _worker(monkeypatch, tmp_path, "a", pg_url)
    record_schedule(C, record)
    assert not (handover_home() / SCHEDULES_FILE).exists()
    _worker(monkeypatch, tmp_path, "b", pg_url)
    assert load_schedules() == {C: record}
    replaced = ScheduleRecord(playbook_path="/srv/playbooks/acme-v2.yaml")
    record_schedule(C, replaced)
    _worker(monkeypatch, tmp_path, "a", pg_url)
    assert load_schedules() == {C: replaced}
    _worker(monkeypatch, tmp_path, "c", None)  # a worker on its own folder: its file only
    assert load_schedules() == {}
    record_schedule("other-contract", record)
    on_disk = json.loads((handover_home() / SCHEDULES_FILE).read_text())
    assert on_disk == {"other-contract": record.model_dump(exclude_none=True)}


def test_a_record_from_before_the_store_is_taken_into_it(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = ScheduleRecord(playbook_path="/srv/playbooks/early.yaml")
    _worker(monkeypatch, tmp_path, "a", None)
    record_schedule("early-contract", record)
    _worker(monkeypatch, tmp_path, "a", pg_url)
    assert load_schedules() == {"early-contract": record}
    _worker(monkeypatch, tmp_path, "b", pg_url)
    assert load_schedules() == {"early-contract": record}
    assert PostgresStore(pg_url).read_blob("early-contract", SCHEDULES_FILE) is not None
