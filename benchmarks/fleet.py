"""A fleet: many sshd hosts, several contracts, takeover then exit of all, on 1 then 2 workers.

Issue #13, item 4. Starts a Prefect server (tests/fixtures/prefect_server.py,
SQLite, auth string required), creates the `handover` process work pool and
the phase deployments (`prefect deploy --all` from the repository root, as
deployments/README.md says). Then, for each worker count of --workers, a
round with a fresh set of contracts (so no run of a round meets another's):

- --hosts sshd hosts on loopback (tests/fixtures/sshd.py), spread over
  --contracts contracts, each host with a small tree (tests/remote_estate.py
  `put_tree`: a few files): this measures orchestration, not bandwidth;
- one playbook per contract in the round's playbook folder, local delivery;
- N `prefect worker start --pool handover --limit L` processes with the
  worker environment of deployments/README.md;
- a separate process answering the exits' human steps through the API
  (flows.lifecycle.answer_acceptance_when_paused, as the team test does);
- the takeover of every contract queued through the API at once; each
  contract's reversibility queued as soon as its takeover completed.

While the runs go, this process times GET /api/health and POST
/api/flow_runs/filter every second (the API latency people and workers see)
and samples each worker's process tree in /proc (peak RSS). At the end of a
round it reads the CPU time of the workers (with their flow-run children),
the sshd hosts, the server and the answering process.

Printed per round: hosts per minute (hosts taken over and exited / wall),
runs completed / failed / lost, API latency p50/p95, peak RSS per worker,
CPU seconds per host; then the scaling of the last round over the first and
what bounds it, computed from the CPU figures (on a 2-core machine the sshd
hosts, the server and the workers share the same cores), with a projection
to a machine with spare cores. Exit status 1 when any run did not complete
(the goal: no run lost), 2 for usage errors.

    .venv/bin/python benchmarks/fleet.py [--hosts 30] [--contracts 3] [--workers 1,2]
                                         [--limit 1] [--timeout 3600] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Sets PREFECT_API_URL, PREFECT_HOME and the API auth string at import time (children inherit).
import tests.fixtures.prefect_server as prefect_fixture  # noqa: E402
from benchmarks import _fleet_procs as procs  # noqa: E402
from tests.fixtures.sshd import SshdFactory, SshdHost  # noqa: E402

BIN = Path(sys.executable).parent
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
ANSWERER = (
    "import sys, threading\n"
    "from pathlib import Path\n"
    "from flows.lifecycle import answer_acceptance_when_paused as answer\n"
    "stop = threading.Event()\n"
    "for thread in [answer(Path(p), stop) for p in sys.argv[1:]]:\n"
    "    thread.join()\n"
)


@dataclass
class Contract:
    name: str
    playbook: Path
    hosts: list[SshdHost]
    notice: str  # the exit's notice date, so its switch-over is today (a drill)
    takeover: str | None = None  # flow run ids
    exit: str | None = None


@dataclass
class Round:
    workers: int
    slots: int  # workers x --limit
    root: Path
    contracts: list[Contract]
    env: dict[str, str]
    signer_key: Path
    states: dict[str, str] = field(default_factory=dict)  # run id -> state type
    health_ms: list[float] = field(default_factory=list)
    filter_ms: list[float] = field(default_factory=list)
    memory: list[procs.TreeMemory] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # flow runs as last read
    retried: dict[str, int] = field(default_factory=dict)  # API calls retried, by status
    wall: float = 0.0

    @property
    def hosts(self) -> int:
        return sum(len(c.hosts) for c in self.contracts)

    def runs(self) -> list[str]:
        return [r for c in self.contracts for r in (c.takeover, c.exit) if r is not None]


class Api:
    """The few REST calls the benchmark makes, each timed, retried like Prefect's client.

    Prefect's own client retries 429 and 503 (a busy server, SQLite locked)
    with backoff; so does this, and counts them: a retried call is slow, not lost.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(headers=prefect_fixture.api_headers(), timeout=60)
        self.rows: dict[str, dict[str, Any]] = {}  # the last flow runs read
        self.retried: dict[str, int] = {}  # "<status> <path>" -> count

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(8):
            try:
                response = self.http.request(method, f"{self.url}{path}", **kwargs)
            except httpx.TransportError as exc:
                what = type(exc).__name__
            else:
                if response.status_code not in (429, 502, 503, 504):
                    response.raise_for_status()
                    return response
                what = str(response.status_code)
            key = f"{what} {method} {path.split('/')[1]}"
            self.retried[key] = self.retried.get(key, 0) + 1
            time.sleep(min(10.0, 0.5 * 2**attempt))
        raise SystemExit(f"{method} {path}: the server kept failing ({what})")

    def deployment_id(self, name: str) -> str:
        return str(self._call("GET", f"/deployments/name/{name}/{name}").json()["id"])

    def create_run(self, deployment: str, parameters: dict[str, Any]) -> str:
        response = self._call(
            "POST", f"/deployments/{deployment}/create_flow_run", json={"parameters": parameters}
        )
        return str(response.json()["id"])

    def workers_online(self, prefix: str) -> int:
        response = self._call("POST", "/work_pools/handover/workers/filter", json={})
        return sum(
            1
            for w in response.json()
            if str(w["name"]).startswith(prefix) and w.get("status") == "ONLINE"
        )

    def health_ms(self) -> float:
        started = time.perf_counter()
        self._call("GET", "/health")
        return (time.perf_counter() - started) * 1000

    def states(self, ids: list[str]) -> tuple[dict[str, str], float]:
        started = time.perf_counter()
        response = self._call(
            "POST", "/flow_runs/filter", json={"flow_runs": {"id": {"any_": ids}}}
        )
        elapsed = (time.perf_counter() - started) * 1000
        self.rows = {str(r["id"]): r for r in response.json()}
        states = {key: (r["state"] or {}).get("type", "?") for key, r in self.rows.items()}
        return states, elapsed


def prefect_cli(env: dict[str, str], *argv: str) -> str:
    done = subprocess.run(
        [str(BIN / "prefect"), *argv],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"prefect {' '.join(argv)} failed:\n{done.stdout[-3000:]}{done.stderr}")
    return done.stdout + done.stderr


def start_server() -> int:
    """Start the fixture's Prefect server; its pid."""
    from flows import server

    saved = os.environ.get("HANDOVER_HOME")
    os.environ["HANDOVER_HOME"] = str(prefect_fixture._HOME)
    try:
        info = server.start(port=prefect_fixture._PORT)
        server.ensure_automations()
    finally:
        _restore("HANDOVER_HOME", saved)
    if info.pid is None:
        raise SystemExit("the Prefect server started without a pid")
    return info.pid


def stop_server() -> None:
    from flows import server

    saved = os.environ.get("HANDOVER_HOME")
    os.environ["HANDOVER_HOME"] = str(prefect_fixture._HOME)
    try:
        server.stop()
    finally:
        _restore("HANDOVER_HOME", saved)


def _restore(key: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = value


def build_round(work: Path, factory: SshdFactory, args: argparse.Namespace, workers: int) -> Round:
    """A fresh home, vault key, client keys and contracts (hosts, data, playbook) for a round."""
    from flows.lifecycle import drill_notice_date
    from handover.demo.incidents import record_demo_incidents
    from handover.demo.keys import make_demo_keys
    from handover.secrets.vault_key import create_key_file
    from tests.remote_estate import RemoteWorkspace, put_tree, remote_playbook, write_playbook

    root = work / f"round-{workers}w"
    playbooks = root / "playbooks"
    playbooks.mkdir(parents=True)
    home = root / ".handover"
    key_file = root / "vault.key"
    os.environ["HANDOVER_HOME"] = str(home)  # record_demo_incidents writes there
    create_key_file(key_file)
    keys = make_demo_keys(root / "keys")  # one client for all: one signer for the answers
    contracts = []
    for index in range(args.contracts):
        name = f"fleet-{workers}w-{index + 1}"
        count = len(range(index, args.hosts, args.contracts))
        hosts = [factory.start(f"h{i + 1}") for i in range(count)]
        ws = RemoteWorkspace(
            root=root,
            contract=name,
            keys=keys,
            provider_key=root / "no-provider-key",
            provider_pub="",
            playbook=playbooks / f"{name}.yaml",
        )
        record_demo_incidents(name)
        for host in hosts:
            host.write_known_hosts(ws.contract_dir / "known_hosts")
        datasets = [
            {"name": f"{host.name}-data", "host": host.name, "paths": [str(put_tree(host))]}
            for host in hosts
        ]
        data = remote_playbook(
            ws,
            [host.host_dict() for host in hosts],
            datasets,
            delivery={"kind": "local", "path": str(root / "deliveries" / name)},
            backups_target=str(root / "backups" / name),
        )
        data["documentation"] = {"sources": []}
        path = write_playbook(ws, data)
        contracts.append(Contract(name, path, hosts, drill_notice_date(path).isoformat()))
    env = {
        **os.environ,
        "HANDOVER_WORKDIR": str(ROOT),
        "HANDOVER_PLAYBOOK_DIRS": str(playbooks),
        "HANDOVER_HOME": str(home),
        "HANDOVER_VAULT_KEY_FILE": str(key_file),
        "HANDOVER_PAUSE_POLL_SECONDS": "1",
    }
    env.pop("HANDOVER_VAULT_KEY", None)
    slots = workers * args.limit
    return Round(workers, slots, root, contracts, env, keys.client_signing_key)


def start_workers(rnd: Round, limit: int) -> list[subprocess.Popen[bytes]]:
    started = []
    for index in range(rnd.workers):
        home = rnd.root / f"prefect-home-worker{index + 1}"
        home.mkdir(mode=0o700)
        with (rnd.root / f"worker{index + 1}.log").open("wb") as log:
            started.append(
                subprocess.Popen(
                    [
                        *(str(BIN / "prefect"), "worker", "start", "--pool", "handover"),
                        *("--limit", str(limit), "--name", f"fleet-{rnd.workers}w-{index + 1}"),
                    ],
                    env={**rnd.env, "PREFECT_HOME": str(home)},
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    return started


def start_answerer(rnd: Round) -> subprocess.Popen[bytes]:
    with (rnd.root / "answers.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-c", ANSWERER, *(str(c.playbook) for c in rnd.contracts)],
            env={
                **rnd.env,
                "HANDOVER_TEST_SIGNER_KEY": str(rnd.signer_key),
                "PYTHONPATH": str(ROOT),
            },
            cwd=rnd.root,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_measured(process: subprocess.Popen[bytes], grace_s: float = 60) -> float:
    """SIGTERM the process group, reap the leader with wait4: its CPU s with its children's."""
    if process.returncode is not None:
        return 0.0
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while True:
        pid, _, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = 0  # reaped here; Popen must not wait again
            return usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            grace_s, deadline = 0, time.monotonic() + 30
        time.sleep(0.2)


def wait_online(rnd: Round, api: Api, workers: list[subprocess.Popen[bytes]]) -> None:
    """Until every worker of the round has said it is online (not timed: start-up)."""
    started = time.perf_counter()
    deadline = time.monotonic() + 300
    while api.workers_online(f"fleet-{rnd.workers}w-") < rnd.workers:
        if any(w.poll() is not None for w in workers) or time.monotonic() > deadline:
            raise SystemExit(f"the workers did not come online: see {rnd.root}/worker*.log")
        time.sleep(1)
    print(f"  {rnd.workers} worker(s) online in {time.perf_counter() - started:.0f} s", flush=True)


def drive(rnd: Round, api: Api, deployments: dict[str, str], timeout_s: float) -> None:
    """Queue every takeover, each exit after its takeover; poll states, latency and memory."""
    started = time.perf_counter()
    for contract in rnd.contracts:
        contract.takeover = api.create_run(
            deployments["takeover"], {"playbook_path": str(contract.playbook)}
        )
    deadline = time.monotonic() + timeout_s
    last_print = 0.0
    while time.monotonic() < deadline:
        rnd.health_ms.append(api.health_ms())
        rnd.states, elapsed = api.states(rnd.runs())
        rnd.filter_ms.append(elapsed)
        for contract in rnd.contracts:
            if contract.exit is None and rnd.states.get(contract.takeover or "") == "COMPLETED":
                contract.exit = api.create_run(
                    deployments["reversibility"],
                    {"playbook_path": str(contract.playbook), "notice_date": contract.notice},
                )
                rnd.states[contract.exit] = "SCHEDULED"
        parent_of = procs.parents()
        for memory in rnd.memory:
            memory.sample(parent_of)
        if _all_final(rnd):
            break
        if time.monotonic() - last_print > 30:
            last_print = time.monotonic()
            counts: dict[str, int] = {}
            for state in rnd.states.values():
                counts[state] = counts.get(state, 0) + 1
            print(f"  {time.perf_counter() - started:5.0f} s: {counts}", flush=True)
        time.sleep(1.0)
    rnd.wall = time.perf_counter() - started
    rnd.rows = dict(api.rows)
    rnd.retried = dict(api.retried)
    api.retried.clear()


def _all_final(rnd: Round) -> bool:
    for contract in rnd.contracts:
        took = rnd.states.get(contract.takeover or "")
        if took not in FINAL:
            return False
        if took == "COMPLETED" and rnd.states.get(contract.exit or "") not in FINAL:
            return False
    return True


def sshd_cpu(rnd: Round) -> float:
    """CPU s of the round's sshd daemons with their (reaped) connection processes."""
    pids = [h.process.pid for c in rnd.contracts for h in c.hosts if h.process is not None]
    return sum(procs.cpu_seconds(pid) for pid in pids)


def run_round(
    rnd: Round, api: Api, deployments: dict[str, str], server_pid: int, args: argparse.Namespace
) -> None:
    server_cpu0 = procs.cpu_seconds(server_pid)
    sshd_cpu0 = sshd_cpu(rnd)
    own0 = os.times()
    workers = start_workers(rnd, args.limit)
    rnd.memory = [procs.TreeMemory(w.pid) for w in workers]
    answerer = start_answerer(rnd)
    try:
        wait_online(rnd, api, workers)
        drive(rnd, api, deployments, args.timeout)
    finally:
        rnd.cpu["sshd hosts"] = sshd_cpu(rnd) - sshd_cpu0
        rnd.cpu["server"] = procs.cpu_seconds(server_pid) - server_cpu0
        rnd.cpu["workers"] = sum(stop_measured(w) for w in workers)
        rnd.cpu["answers"] = stop_measured(answerer)
        own = os.times()
        rnd.cpu["benchmark"] = own.user + own.system - own0.user - own0.system


def run_times(rnd: Round) -> tuple[list[float], list[float]]:
    """(queued -> started, started -> ended) in s of each finished run, from the API's rows."""
    from datetime import datetime

    pickup, running = [], []
    for row in rnd.rows.values():
        created, start, end = row.get("created"), row.get("start_time"), row.get("end_time")
        if created and start and end:
            begun = datetime.fromisoformat(start)
            pickup.append((begun - datetime.fromisoformat(created)).total_seconds())
            running.append((datetime.fromisoformat(end) - begun).total_seconds())
    return pickup, running


def report_round(rnd: Round) -> tuple[int, int, int]:
    """Print the round's figures; (completed, failed, lost) runs."""
    completed = sum(1 for s in rnd.states.values() if s == "COMPLETED")
    failed = sum(1 for s in rnd.states.values() if s in ("FAILED", "CANCELLED"))
    lost = len(rnd.states) - completed - failed
    done_hosts = sum(
        len(c.hosts) for c in rnd.contracts if rnd.states.get(c.exit or "") == "COMPLETED"
    )
    rnd.wall = max(rnd.wall, 1e-3)
    per_min = done_hosts / rnd.wall * 60
    hosts = rnd.hosts
    total = sum(rnd.cpu.values())
    print(
        f"{rnd.workers} worker(s): {hosts} hosts, {len(rnd.contracts)} contracts, wall"
        f" {rnd.wall:.0f} s, {per_min:.1f} hosts/min (taken over and exited)\n"
        f"  runs: {len(rnd.states)} created, {completed} completed, {failed} failed,"
        f" {lost} lost (crashed or never finished)\n"
        f"  API latency: GET /health p50 {procs.percentile(rnd.health_ms, 0.5):.0f} ms"
        f" p95 {procs.percentile(rnd.health_ms, 0.95):.0f} ms; POST /flow_runs/filter"
        f" p50 {procs.percentile(rnd.filter_ms, 0.5):.0f} ms"
        f" p95 {procs.percentile(rnd.filter_ms, 0.95):.0f} ms ({len(rnd.health_ms)} samples);"
        f" calls retried: {rnd.retried or 'none'}"
    )
    pickup, running = run_times(rnd)
    if running:
        print(
            f"  per run: queued -> started {sum(pickup) / len(pickup):.0f} s on average"
            f" (max {max(pickup):.0f} s), running {sum(running) / len(running):.0f} s on average"
            f" (max {max(running):.0f} s); {sum(running):.0f} run-seconds in"
            f" {rnd.wall:.0f} s of wall = {sum(running) / rnd.wall:.2f} runs at once of"
            f" {rnd.slots} slots (the rest: a worker polling for work, a run's process"
            f" starting, a contract's exit waiting for its takeover)"
        )
    for index, memory in enumerate(rnd.memory, 1):
        print(
            f"  worker {index}: peak RSS {memory.worker_hwm_kib / 1024:.0f} MiB itself, largest"
            f" flow run {memory.child_hwm_kib / 1024:.0f} MiB, peak of the tree"
            f" {memory.peak_sum_kib / 1024:.0f} MiB ({len(memory.children_seen)} child processes)"
        )
    parts = ", ".join(f"{k} {v:.0f}" for k, v in rnd.cpu.items())
    print(
        f"  CPU s: {parts}; total {total:.0f} s = {total / hosts:.1f} s per host"
        f" (workers {rnd.cpu['workers'] / hosts:.1f}, server {rnd.cpu['server'] / hosts:.1f},"
        f" sshd {rnd.cpu['sshd hosts'] / hosts:.2f})\n"
        f"  cores busy on average: {total / rnd.wall:.2f} of {os.cpu_count()}"
        f" (load average {os.getloadavg()[0]:.1f}: other jobs share them)"
    )
    if completed != len(rnd.states):
        print(f"  !!! NOT EVERY RUN COMPLETED in round {rnd.workers}w:", flush=True)
        for contract in rnd.contracts:
            for phase, run in (("takeover", contract.takeover), ("exit", contract.exit)):
                state = rnd.states.get(run or "", "never created")
                if state != "COMPLETED":
                    print(f"  !!!   {contract.name} {phase} {run}: {state}")
        print(f"  !!! worker logs: {rnd.root}/worker*.log", flush=True)
    return completed, failed, lost


def report_scaling(rounds: list[Round]) -> None:
    """The scaling of the last round over the first, what bounds it, and a projection."""
    first, last = rounds[0], rounds[-1]
    rate = [r.hosts / r.wall * 60 for r in (first, last)]
    ratio = rate[1] / rate[0]
    cores = os.cpu_count() or 1
    print(
        f"scaling {first.workers} -> {last.workers} workers: x{ratio:.2f} hosts/min"
        f" ({rate[0]:.1f} -> {rate[1]:.1f})"
    )
    busy = sum(last.cpu.values()) / last.wall
    per_host = sum(last.cpu.values()) / last.hosts
    workers_per_host = last.cpu["workers"] / last.hosts
    server_per_host = last.cpu["server"] / last.hosts
    if busy >= 0.7 * cores:
        bound = (
            f"CPU: the {last.workers}-worker round kept {busy:.2f} of {cores} cores busy with"
            f" its own processes alone (sshd hosts, server and workers share them, other jobs"
            f" too); at {per_host:.1f} CPU s per host these cores cap the fleet at"
            f" {cores * 60 / per_host:.1f} hosts/min"
        )
    elif os.getloadavg()[0] >= cores:
        bound = (
            f"CPU, shared: the load average ({os.getloadavg()[0]:.1f}) exceeds the {cores}"
            f" cores, so this round's processes got {busy:.2f} cores; at {per_host:.1f} CPU s"
            f" per host the whole machine would cap the fleet at"
            f" {cores * 60 / per_host:.1f} hosts/min"
        )
    else:
        bound = (
            f"not this round's CPU ({busy:.2f} of {cores} cores busy with its processes): the"
            f" load of other jobs (load average {os.getloadavg()[0]:.1f}), the runs' waits"
            f" (pauses, polling) and the slots (workers x --limit)"
        )
    print(f"what bounds it: {bound}")
    # hosts/min ratio = (runs at once ratio) x (per-run speed ratio): more slots busy, but
    # each run slower when the CPU is shared.
    (_, run1), (_, run2) = run_times(first), run_times(last)
    if run1 and run2:
        at_once = [sum(run) / r.wall for run, r in ((run1, first), (run2, last))]
        speed = (sum(run1) / len(run1)) / (sum(run2) / len(run2))
        print(
            f"  = runs at once x{at_once[1] / at_once[0]:.2f} ({at_once[0]:.2f} of"
            f" {first.slots} slots -> {at_once[1]:.2f} of {last.slots}: slots idle while a"
            f" worker polls, a run's process starts, an exit waits for its takeover)"
            f" x per-run speed x{speed:.2f} (a run's time"
            f" {sum(run1) / len(run1):.0f} s -> {sum(run2) / len(run2):.0f} s: the CPU shared)"
        )
    # Elsewhere, the hosts are other machines; a worker needs the CPU of its runs, and the
    # server (one process) serves at most one core's worth of API.
    need = (first.cpu["workers"] / first.wall) * last.workers / first.workers
    ideal = rate[0] * last.workers / first.workers
    server_cap = 60 / server_per_host if server_per_host else float("inf")
    print(
        f"projection: with >= {int(need) + 2} free cores for {last.workers} workers"
        f" ({workers_per_host:.1f} CPU s per host on the workers) and the sshd hosts on"
        f" their own machines, {last.workers} workers would do about"
        f" {min(ideal, server_cap):.1f} hosts/min (x{min(ideal, server_cap) / rate[0]:.2f});"
        f" the server alone (one process, {server_per_host:.1f} CPU s per host) caps it at"
        f" {server_cap:.0f} hosts/min"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=30, help="sshd hosts per round")
    parser.add_argument("--contracts", type=int, default=3, help="contracts per round")
    parser.add_argument("--workers", default="1,2", help="worker counts, one round each")
    parser.add_argument("--limit", type=int, default=1, help="runs at once per worker")
    parser.add_argument("--timeout", type=float, default=3600, help="per round, in seconds")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    try:
        counts = [int(part) for part in args.workers.split(",")]
    except ValueError:
        parser.error("--workers: comma-separated worker counts, e.g. 1,2")
    if not counts or min(counts) < 1 or args.contracts < 1 or args.hosts < args.contracts:
        parser.error("need --workers >= 1 each, --contracts >= 1 and --hosts >= --contracts")
    if args.limit < 1:
        parser.error("--limit must be >= 1")

    work = Path(tempfile.mkdtemp(prefix="handover-fleet-bench-"))
    os.chmod(work, 0o755)  # the hosts' non-root users traverse it
    failures = 1  # until every round has run: keep the work folder of a crash
    rounds: list[Round] = []
    started = time.perf_counter()
    server_pid = start_server()
    try:
        api = Api(os.environ["PREFECT_API_URL"])
        operator = {**os.environ, "HANDOVER_WORKDIR": str(ROOT)}
        prefect_cli(operator, "work-pool", "create", "handover", "--type", "process")
        prefect_cli(
            operator, "--no-prompt", "deploy", "--prefect-file", "deployments/prefect.yaml", "--all"
        )
        deployments = {p: api.deployment_id(p) for p in ("takeover", "reversibility")}
        print(f"server, pool and deployments ready in {time.perf_counter() - started:.0f} s")
        for workers in counts:
            with SshdFactory(work / f"sshd-{workers}w") as factory:
                setup = time.perf_counter()
                rnd = build_round(work, factory, args, workers)
                print(
                    f"round {workers}w: {rnd.hosts} sshd hosts, {args.contracts} contracts set up"
                    f" in {time.perf_counter() - setup:.0f} s; {workers} worker(s)"
                    f" --limit {args.limit}",
                    flush=True,
                )
                run_round(rnd, api, deployments, server_pid, args)
            _, failed, lost = report_round(rnd)
            failures += failed + lost
            rounds.append(rnd)
        if len(rounds) > 1:
            report_scaling(rounds)
        failures -= 1
    finally:
        stop_server()
        if args.keep or failures:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"!!! {failures} run(s) did not complete: the goal is no run lost", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
