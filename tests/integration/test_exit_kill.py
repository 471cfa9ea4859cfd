"""The kill campaign: kill -9 the exit at every item of the reversibility phase, then rerun.

One chain of `handover run reversibility --accept` processes on the demo's
local hosts and a real Prefect server: run N is killed with SIGKILL (the
whole process group) as soon as item N shows running; run N+1 resumes from
what was recorded and is killed at item N+1; a last run completes the exit.
The datasets include a large one, and the kill at `datasets-exported` lands
inside its export, once its volume is partly written.

After each kill: the audit chain verifies, the bundle under construction
never looks sealed before `bundle-sealed` is done, and a delivered bundle
under its final name always verifies. At the end: every item done, each
item started at most twice (once more only when a kill caught it running),
the volumes finished before the kill inside the export adopted (the same bytes),
and the bundle checked with the client's standard tools alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun

from flows.lifecycle import run_phase
from handover.checklist.model import Status
from handover.checklist.store import ChecklistStore
from handover.contract.playbook import phase_items
from tests.conftest import require_binary
from tests.workspace import Workspace, make_workspace

pytestmark = pytest.mark.integration

BIG_FILES = 4
BIG_FILE_SIZE = 48 << 20  # 192 MiB of random data: the export takes a few seconds
KILL_INSIDE_EXPORT_AT = 24 << 20
OPERATOR = "Claire Martin (exploitation)"  # bytes of the big volume written when the kill lands


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_server: str) -> Workspace:
    ws = make_workspace(tmp_path, monkeypatch)
    big = ws.home / "demo" / "hosts" / "files01" / "srv" / "big"
    big.mkdir(parents=True)
    for number in range(BIG_FILES):
        with (big / f"part-{number}.bin").open("wb") as handle:
            for _ in range(BIG_FILE_SIZE >> 20):
                handle.write(os.urandom(1 << 20))
    text = ws.playbook.read_text()
    marker = "    - name: shares\n      host: files01\n      paths: [/srv/shares]\n"
    assert marker in text
    # The big dataset last: the others are finished while it is still being written.
    ws.playbook.write_text(
        text.replace(
            marker, marker + "    - name: big\n      host: files01\n      paths: [/srv/big]\n"
        )
    )
    for phase in ("takeover", "implementation", "operational"):
        assert run_phase(phase, ws.playbook), f"{phase} did not complete"
    return ws


def _checklist(ws: Workspace) -> dict[str, Status]:
    try:
        checklist = ChecklistStore().load(ws.contract, "reversibility")
    except Exception:
        return {}
    return {item.id: item.status for item in checklist.items}


def _exit_state(ws: Workspace) -> dict:
    path = ws.home / "contracts" / ws.contract / "reversibility" / "exit-state.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _audit_lines(ws: Workspace) -> list[dict]:
    path = ws.home / "contracts" / ws.contract / "audit.log"
    if not path.exists():
        return []
    entries = []
    for line in path.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue  # a line being written
    return entries


def _last_seq(ws: Workspace) -> int:
    entries = _audit_lines(ws)
    return entries[-1]["seq"] if entries else 0


def _started_since(ws: Workspace, item: str, since: int, phase: str = "reversibility") -> bool:
    """The item started (or finished) in the run begun after audit entry `since`."""
    return any(
        entry["seq"] > since
        and entry["event"] in ("checklist.running", "checklist.done")
        and entry["data"].get("item") == item
        and entry["data"].get("phase") == phase
        for entry in _audit_lines(ws)
    )


def _big_volume_partial(ws: Workspace) -> int:
    """Bytes written so far of the big dataset's volume (its temporary file)."""
    name = _exit_state(ws).get("bundle_name")
    if not name:
        return 0
    folder = ws.home / "contracts" / ws.contract / "bundles" / name / "volumes"
    sizes = [p.stat().st_size for p in folder.glob(".*big*.tmp")] if folder.is_dir() else []
    return max(sizes, default=0)


def _kill_when(proc: subprocess.Popen[bytes], ready, timeout_s: float = 120) -> bool:
    """SIGKILL the process group once `ready()` holds; False if the process ended first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    raise AssertionError("the exit never reached the point of the kill")


def _verify_with_standard_tools(bundle: Path, client_key: Path, out: Path) -> None:
    age = require_binary("age", "age")
    keygen = require_binary("ssh-keygen", "openssh-client")
    subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=bundle, check=True)
    allowed = out / "allowed_signers"
    allowed.write_text(f"provider {(bundle / 'provider.pub').read_text()}")
    with (bundle / "SHA256SUMS").open("rb") as sums:
        subprocess.run(
            [keygen, "-Y", "verify", "-f", str(allowed), "-I", "provider", "-n",
             "handover-bundle", "-s", str(bundle / "SHA256SUMS.sig")],
            stdin=sums, check=True, capture_output=True,
        )  # fmt: skip
    for volume in sorted((bundle / "volumes").glob("*.tar.age")):
        target = out / volume.name
        target.mkdir()
        dec = subprocess.Popen(
            [age, "-d", "-i", str(client_key), str(volume)], stdout=subprocess.PIPE
        )
        subprocess.run(["tar", "-x", "-C", str(target)], stdin=dec.stdout, check=True)
        assert dec.wait() == 0
        subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=target, check=True)


def test_kill_at_every_exit_item_then_rerun(workspace: Workspace, tmp_path: Path) -> None:
    ws = workspace
    from handover.contract.loader import load_playbook

    items = [entry["id"] for entry in phase_items(load_playbook(ws.playbook), "reversibility")]
    command = [
        sys.executable, "-m", "flows.cli", "run", "reversibility", str(ws.playbook), "--accept",
        "--as", OPERATOR,
    ]  # fmt: skip
    store = ChecklistStore()
    contract_dir = ws.home / "contracts" / ws.contract
    deliveries = ws.home / "demo" / "deliveries"
    caught_running: list[str] = []
    redo_expected: Counter[str] = Counter()  # one more start per kill that caught it running
    sealed_before_rerun: dict[str, str] = {}

    for item in items:
        since = _last_seq(ws)
        proc = subprocess.Popen(
            command, cwd=ws.root, env={**os.environ}, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=(tmp_path / f"run-{item}.log").open("wb"),
        )  # fmt: skip
        if item == "datasets-exported":

            def ready() -> bool:
                return _big_volume_partial(ws) >= KILL_INSIDE_EXPORT_AT

        else:

            def ready(item: str = item, since: int = since) -> bool:
                return _started_since(ws, item, since)

        log = tmp_path / f"run-{item}.log"
        try:
            reached = _kill_when(proc, ready)
        except AssertionError:
            raise AssertionError(f"never reached {item}: {_checklist(ws)}") from None
        assert reached, f"the exit ended before the kill at {item}: {log.read_text()[-2000:]}"
        status = _checklist(ws)
        if status[item] is Status.RUNNING:
            caught_running.append(item)
        redo_expected.update(i for i, st in status.items() if st is Status.RUNNING)
        # Nothing is lost or rewritten quietly, and nothing looks finished that is not.
        assert store.audit_log(ws.contract).verify() == [], item
        state = _exit_state(ws)
        work = contract_dir / "bundles" / state.get("bundle_name", "-")
        if status.get("bundle-sealed") is not Status.DONE:
            assert not (work / "SHA256SUMS.sig").exists(), item
        if item == "datasets-exported":
            assert status[item] is Status.RUNNING
            volumes = work / "volumes"
            # age draws a new file key per encryption: a resealed volume has another hash.
            finished = {p.name: _sha256(p) for p in volumes.glob("*.tar.age")}
            assert not any("big" in name for name in finished), finished  # only a temp file
            assert len(finished) >= 3, finished  # the small ones: complete, recorded
            sealed_before_rerun = finished
        for delivered in deliveries.iterdir() if deliveries.is_dir() else []:
            if delivered.is_dir() and delivered.suffix != ".exit":
                subprocess.run(
                    ["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=delivered, check=True
                )

    final = subprocess.run(command, cwd=ws.root, env={**os.environ}, capture_output=True)
    assert final.returncode == 0, final.stderr.decode(errors="replace")[-3000:]

    checklist = store.load(ws.contract, "reversibility")
    assert all(entry.status is Status.DONE for entry in checklist.items), checklist.as_rows()
    assert store.audit_log(ws.contract).verify() == []
    assert "datasets-exported" in caught_running

    # What was redone: an item starts again only when a kill caught it running.
    starts = Counter(
        entry["data"]["item"]
        for entry in store.audit_log(ws.contract).entries()
        if entry["event"] == "checklist.running" and entry["data"]["phase"] == "reversibility"
    )
    # Every change of the exit names who made it: the declared operator, not the login;
    # the client's signing key for the acceptance; the person who confirmed the sessions.
    by_people = {"client-acceptance", "knowledge-transfer-sessions"}
    changes = [
        entry
        for entry in store.audit_log(ws.contract).entries()
        if entry["event"] in ("checklist.running", "checklist.done", "checklist.reopened")
        and entry["data"].get("phase") == "reversibility"
    ]
    assert {
        e["actor"]
        for e in changes
        if not (e["event"] == "checklist.done" and e["data"]["item"] in by_people)
    } == {OPERATOR}
    done_by = {e["data"]["item"]: e["actor"] for e in changes if e["event"] == "checklist.done"}
    assert "SHA256:" in done_by["client-acceptance"], done_by["client-acceptance"]
    assert "pause form" in done_by["knowledge-transfer-sessions"]
    for item in items:
        expected = 1 + redo_expected[item]
        assert starts[item] == expected, (item, starts[item], redo_expected)

    # The volumes finished before the kill inside the export were adopted, not resealed:
    # the delivered bundle holds them byte for byte.
    state = _exit_state(ws)
    bundle = deliveries / state["bundle_name"]
    listing = json.loads((contract_dir / "reversibility" / "volumes.json").read_text())
    adopted = {v["volume"].split("/")[-1] for v in listing.values() if v["adopted"]}
    assert not listing["big"]["adopted"]
    assert len(adopted) >= 3 and adopted <= set(sealed_before_rerun), (adopted, sealed_before_rerun)
    for name in adopted:
        assert _sha256(bundle / "volumes" / name) == sealed_before_rerun[name], name

    out = tmp_path / "client"
    out.mkdir()
    _verify_with_standard_tools(bundle, ws.client_key, out)
    big = next(out.glob("*big*"))
    assert sum(p.stat().st_size for p in big.rglob("part-*.bin")) == BIG_FILES * BIG_FILE_SIZE
    # The signed exit record beside the bundle covers what came after sealing.
    beside = deliveries / f"{state['bundle_name']}.exit"
    assert (beside / "erasure-certificate.md").exists()
    allowed = out / "allowed_exit"
    allowed.write_text(f"provider {(beside / 'provider.pub').read_text()}")
    keygen = require_binary("ssh-keygen", "openssh-client")
    with (beside / "exit-report.md").open("rb") as report:
        subprocess.run(
            [keygen, "-Y", "verify", "-f", str(allowed), "-I", "provider", "-n",
             "handover-exit", "-s", str(beside / "exit-report.md.sig")],
            stdin=report, check=True, capture_output=True,
        )  # fmt: skip
    shutil.rmtree(out)


@pytest.fixture
def fresh_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_server: str
) -> Workspace:
    return make_workspace(tmp_path, monkeypatch)


def test_takeover_killed_mid_way_resumes_from_what_it_recorded(fresh_workspace: Workspace) -> None:
    """Takeover killed after the inventory: the rerun's report uses the recorded inventories."""
    ws = fresh_workspace
    started = datetime.now(UTC)
    command = [sys.executable, "-m", "flows.cli", "run", "takeover", str(ws.playbook)]
    proc = subprocess.Popen(
        command, cwd=ws.root, env={**os.environ}, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert _kill_when(proc, lambda: _started_since(ws, "baseline-snapshot", 0, "takeover"))
    before = ChecklistStore().load(ws.contract, "takeover")
    assert before.item("inventory").status is Status.DONE
    assert before.item("baseline-report").status is Status.PENDING

    rerun = subprocess.run(command, cwd=ws.root, env={**os.environ}, capture_output=True)
    assert rerun.returncode == 0, rerun.stderr.decode(errors="replace")[-3000:]
    report = (ws.home / "contracts" / ws.contract / "takeover" / "documents").glob("*.md")
    text = "\n".join(p.read_text() for p in report)
    assert "n'a pas été inventorié" not in text  # the report is in the contract's French
    assert "État des lieux" in text
    for host in ("web01", "db01", "files01"):
        assert host in text
    starts = Counter(
        entry["data"]["item"]
        for entry in _audit_lines(ws)
        if entry["event"] == "checklist.running" and entry["data"].get("phase") == "takeover"
    )
    assert starts["inventory"] == 1 and starts["hosts-reachable"] == 1  # not redone

    # The killed run does not stay Running: Prefect marks it Crashed once its heartbeats stop.
    killed = _wait_for_crashed(ws.contract, "takeover", started)
    assert killed.state is not None and "No heartbeat" in (killed.state.message or "")


def _wait_for_crashed(
    contract: str, phase: str, since: datetime, timeout_s: float = 150
) -> FlowRun:
    """The one run of `phase` started since `since` that did not complete, once Crashed.

    Other tests of the session may have left runs of the same contract id."""
    deadline = time.monotonic() + timeout_s
    while True:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    tags=FlowRunFilterTags(all_=[f"contract:{contract}", f"phase:{phase}"]),
                    expected_start_time=FlowRunFilterExpectedStartTime(after_=since),
                )
            )
        [unfinished] = [r for r in runs if r.state is None or not r.state.is_completed()]
        if unfinished.state is not None and unfinished.state.is_crashed():
            return unfinished
        assert time.monotonic() < deadline, f"still {unfinished.state}: no zombie detection"
        time.sleep(2)
