"""One contract over two workers that share only a PostgreSQL database and an S3 endpoint.

Issue #13's team setup, end to end: worker A and worker B are `prefect
worker start --pool handover` processes in two separate folders (their own
HANDOVER_HOME, PREFECT_HOME and working copies); they share the team's state
database (`HANDOVER_STATE_URL`), the evidence store on moto's S3 server
(`HANDOVER_EVIDENCE_URL=s3://…`) and paths every worker resolves the same
way (the playbook folder, the demo estate, the vault key file). Only one of
them runs at a time, so each run lands where the test says:

1. takeover on A, which is killed with -9 (worker and flow process) while
   the run waits for the person's item at its end, every automatic item done;
2. the takeover rerun on B: it waits for the dead run's lease to expire,
   takes the done items as they are (their evidence comes from the store,
   A's disk is not reachable), and finishes once the person ticks the item;
3. implementation on A again, operational on B, the exit on A.

Then: one audit chain, intact; the bundle verifies with `sha256sum -c`; it
holds the takeover report A wrote before it died; B keeps no working copy of
client data; the erasure deleted the store's working copies and reports no
other worker holding any.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from handover.state.layout import ContractPaths
from handover.state.postgres import PostgresStore, close_engine
from tests.conftest import PROJECT_ROOT
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.s3 import MotoServer
from tests.prefect_team import (
    BIN,
    Team,
    base_env,
    deploy_all,
    run,
    start_acceptance_answers,
    start_run,
    start_server,
    start_worker,
    stop,
    team_playbook,
    wait_final,
)
from tests.workspace import make_workspace

pytestmark = pytest.mark.integration

CONTRACT = "demo-estate"
PERSON_ITEM = """\
  takeover:
    add:
      - id: site-visit
        title: Site visit with the client's team
        clause: Annex 2
        owner: provider
        evidence_kind: human
        manual: true
"""


@dataclass
class TwoWorkers:
    team: Team
    envs: dict[str, dict[str, str]]
    store: PostgresStore
    bucket: str
    s3: Any
    logs: Path
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str) -> None:
        assert not self.running, f"{', '.join(self.running)} still running"
        self.running[name] = start_worker(self.envs[name], self.logs / f"worker-{name}.log", 1)

    def stop(self, name: str) -> None:
        stop(self.running.pop(name))

    def log(self, name: str) -> str:
        return (self.logs / f"worker-{name}.log").read_text(errors="replace")[-4000:]

    def home(self, name: str) -> Path:
        return Path(self.envs[name]["HANDOVER_HOME"])

    def index(self) -> dict[str, Any]:
        data = self.store.read_blob(CONTRACT, "evidence-index.json")
        assert data is not None, "no evidence index in the state store"
        parsed: dict[str, Any] = json.loads(data)
        return parsed


@pytest.fixture
def workers(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    postgres_server: PostgresServer,
    s3_server: MotoServer,
    s3_bucket: str,
) -> Iterator[TwoWorkers]:
    pg = postgres_server
    prefect_db = pg.create_database()
    state_db = pg.create_database()
    processes: list[subprocess.Popen[bytes]] = []
    setup: TwoWorkers | None = None
    try:
        auth = f"handover:{secrets.token_urlsafe(33)}"
        server, api_url = start_server(
            tmp_path,
            f"postgresql+asyncpg://{pg.role}:{pg.password}@{pg.host}:{pg.port}/{prefect_db}",
            auth,
        )
        processes.append(server)
        client_env = {
            **base_env(tmp_path, "operator"),
            "PREFECT_API_URL": api_url,
            "PREFECT_API_AUTH_STRING": auth,
        }
        run(
            client_env, str(BIN / "prefect"), "work-pool", "create", "handover", "--type", "process"
        )

        # The operator prepares the contract against the team's database (vault, journal).
        state_url = pg.url(state_db)
        monkeypatch.setenv("HANDOVER_STATE_URL", state_url)
        workspace, folder = team_playbook(make_workspace(tmp_path, monkeypatch))
        text = workspace.playbook.read_text()
        assert "  takeover: {}\n" in text
        workspace.playbook.write_text(text.replace("  takeover: {}\n", PERSON_ITEM))
        deploy_all(client_env)

        s3 = s3_server.client()
        s3.put_bucket_versioning(Bucket=s3_bucket, VersioningConfiguration={"Status": "Enabled"})
        envs = {}
        for name in ("a", "b"):
            home = tmp_path / f"worker-{name}" / "home"
            home.mkdir(parents=True)
            envs[name] = {
                **client_env,
                **base_env(tmp_path, f"worker-{name}"),
                **s3_server.env(),
                "PREFECT_API_URL": api_url,
                "PREFECT_API_AUTH_STRING": auth,
                "HANDOVER_WORKDIR": str(PROJECT_ROOT),
                "HANDOVER_PLAYBOOK_DIRS": str(folder),
                "HANDOVER_HOME": str(home),
                "HANDOVER_VAULT_KEY_FILE": os.environ["HANDOVER_VAULT_KEY_FILE"],
                "HANDOVER_STATE_URL": state_url,
                "HANDOVER_EVIDENCE_URL": f"s3://{s3_bucket}/team",
                "HANDOVER_PAUSE_POLL_SECONDS": "1",
            }
        team = Team(api_url, auth, client_env, envs["a"], state_url, workspace)
        setup = TwoWorkers(team, envs, PostgresStore(state_url), s3_bucket, s3, tmp_path)
        yield setup
    finally:
        if setup is not None:
            for process in setup.running.values():
                stop(process)
        for process in reversed(processes):
            stop(process)
        close_engine(pg.url(state_db))
        pg.drop_database(prefect_db)
        pg.drop_database(state_db)


def _flow_run(team: Team, run_id: str) -> dict[str, Any]:
    response = httpx.get(f"{team.api_url}/flow_runs/{run_id}", headers=team.headers())
    response.raise_for_status()
    found: dict[str, Any] = response.json()
    return found


def _wait_state(setup: TwoWorkers, run_id: str, wanted: str, worker: str) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    state = "?"
    while time.monotonic() < deadline:
        found = _flow_run(setup.team, run_id)
        state = found["state"]["type"]
        if state == wanted:
            return found
        assert state not in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"), (
            f"{run_id}: {state} while waiting for {wanted}\n{setup.log(worker)}"
        )
        time.sleep(1)
    pytest.fail(f"{run_id}: still {state}, never {wanted}\n{setup.log(worker)}")


def _complete(setup: TwoWorkers, run_id: str, worker: str) -> None:
    final = wait_final(setup.team, run_id, timeout_s=600)
    assert final == "COMPLETED", f"{run_id}: {final}\n{setup.log(worker)}"


def _checklist(setup: TwoWorkers, phase: str) -> dict[str, str]:
    data = setup.store.read_checklist(CONTRACT, phase)
    assert data is not None, f"no {phase} checklist in the state store"
    return {item["id"]: item["status"] for item in json.loads(data)["items"]}


def _kill(setup: TwoWorkers, name: str, flow_run: dict[str, Any]) -> None:
    """kill -9 of the worker's process group and of the flow run's process."""
    worker = setup.running.pop(name)
    pid = int(str(flow_run["infrastructure_pid"]).rsplit(":", 1)[-1])
    os.killpg(worker.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):  # it was in the worker's group
        os.kill(pid, signal.SIGKILL)
    worker.wait(10)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_one_contract_over_two_workers_one_killed(workers: TwoWorkers, tmp_path: Path) -> None:
    from flows.lifecycle import drill_notice_date

    setup, team = workers, workers.team

    # 1. Takeover on A; killed while it waits for the person's item, everything else done.
    setup.start("a")
    first = start_run(team, "takeover")
    paused = _wait_state(setup, first, "PAUSED", "a")
    statuses = _checklist(setup, "takeover")
    assert statuses.pop("site-visit") == "pending", statuses
    assert set(statuses.values()) <= {"done", "waived"}, statuses
    indexed = setup.index()["files"]
    report = "takeover/documents/baseline-report.md"
    assert report in indexed, sorted(indexed)[:20]
    assert any(path.startswith("takeover/baseline/") for path in indexed), sorted(indexed)
    written_by_a = indexed[report]["sha256"]
    _kill(setup, "a", paused)

    # 2. The rerun on B (after the dead run's lease expires), the person's tick, done.
    setup.start("b")
    rerun = start_run(team, "takeover")
    _wait_state(setup, rerun, "PAUSED", "b")
    evidence = tmp_path / "site-visit.md"
    evidence.write_text("Visited the client's site with their team.\n")
    operator_env = {**setup.envs["b"], "PYTHONPATH": str(PROJECT_ROOT)}
    run(
        operator_env,
        str(BIN / "handover"),
        *("item", "done", CONTRACT, "takeover", "site-visit"),
        *("--evidence", str(evidence)),
        cwd=team.workspace.root,
    )
    _complete(setup, rerun, "b")
    assert set(_checklist(setup, "takeover").values()) <= {"done", "waived"}
    b_contract = setup.home("b") / "contracts" / CONTRACT
    b_report = b_contract / report
    assert b_report.is_file(), "B never fetched the report A wrote"
    assert hashlib.sha256(b_report.read_bytes()).hexdigest() == written_by_a
    assert not any((b_contract / "takeover" / "baseline").rglob("*.json")), (
        "B kept working copies of client data after its run"
    )
    setup.stop("b")

    # 3. Implementation on A, operational on B, the exit on A.
    runs = {"takeover": rerun}
    for phase, name in (("implementation", "a"), ("operational", "b")):
        setup.start(name)
        runs[phase] = start_run(team, phase)
        _complete(setup, runs[phase], name)
        setup.stop(name)

    # What the store holds of client data before the exit (baselines, inventories...).
    layout = ContractPaths(CONTRACT, tmp_path / "layout")
    working = tuple(
        folder.relative_to(layout.root).as_posix() + "/" for folder, _ in layout.working_copies()
    )
    client_data = {
        entry["sha256"]
        for path, entry in setup.index()["files"].items()
        if path.startswith(working)
    }
    assert client_data, "no working copy of client data was ever in the evidence store"

    setup.start("a")
    answers = start_acceptance_answers(
        setup.envs["a"], team.workspace.playbook, team.workspace.root
    )
    try:
        notice = drill_notice_date(team.workspace.playbook).isoformat()
        runs["reversibility"] = start_run(team, "reversibility", "--param", f"notice_date={notice}")
        _complete(setup, runs["reversibility"], "a")
    finally:
        stop(answers)
    setup.stop("a")

    # The runs spread over both workers, as the server recorded them.
    hosts = {phase: _flow_run(team, run_id)["infrastructure_pid"] for phase, run_id in runs.items()}
    assert all(hosts.values()), hosts

    # One chain, intact, in the team's database.
    audit = run(
        operator_env,
        str(BIN / "handover"),
        *("audit", str(team.workspace.playbook), "--verify"),
        cwd=team.workspace.root,
    )
    assert "hash chain intact" in audit, audit

    # The client's bundle, with standard tools only; it holds the report A wrote before dying.
    deliveries = team.workspace.home / "demo" / "deliveries"
    sums = sorted(deliveries.rglob("SHA256SUMS"))
    assert len(sums) == 1, sums
    subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=sums[0].parent, check=True)
    index_tar = subprocess.run(
        ["age", "-d", "-i", str(team.workspace.client_key), "index.tar.age"],
        cwd=sums[0].parent,
        capture_output=True,
        check=True,
    ).stdout
    sealed = subprocess.run(
        ["tar", "-xOf", "-", "documents/takeover/baseline-report.md"],
        input=index_tar,
        capture_output=True,
        check=True,
    ).stdout
    assert hashlib.sha256(sealed).hexdigest() == written_by_a

    # The erasure: the store's working copies gone, no worker still holding any.
    index = setup.index()
    assert not index.get("holders"), index.get("holders")
    assert not [path for path in index["files"] if path.startswith(working)]
    referenced = {entry["sha256"] for entry in index["files"].values()}
    versions = setup.s3.list_object_versions(Bucket=setup.bucket, Prefix="team/")
    stored = {version["Key"].rsplit("/", 1)[-1] for version in versions.get("Versions", [])}
    assert stored & referenced, "the kept evidence is no longer in the store"
    left = stored & (client_data - referenced)
    assert not left, f"{len(left)} object(s) of client data left in the evidence store"
    certificate = setup.home("a") / "contracts" / CONTRACT / "reversibility"
    text = (certificate / "erasure-certificate.md").read_text()
    assert "reversibility/erasure-certificate.md" in index["files"]
    assert "evidence store" in text and "other workers" in text, text[:3000]
