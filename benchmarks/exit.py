"""A whole exit, end to end: the reversibility flow on 3 SSH hosts and 1 S3 prefix.

Issue #16, goal 4. Starts, with the tests' fixtures used as libraries, three
sshd hosts on loopback (tests/fixtures/sshd.py), a moto S3 server
(tests/fixtures/s3.py) and a Prefect server (tests/fixtures/prefect_server.py),
spreads --gib of data over --files files (the S3 prefix gets --s3-share of
both, the rest is split over the hosts: a few large files and many small
ones each), writes a playbook (tests/remote_estate.py), runs the takeover
phase (setup, not timed: the exit needs its baseline), then times:

    handover: the reversibility flow, run in a child process
              (flows.lifecycle.run_phase, the client's acceptance answered
              automatically): seal every dataset, index, README, signature,
              delivery, credentials export, erasure, certificates
    anchor:   the same data with shell tools, the four datasets at once:
              `ssh HOST tar -cf - TREE | age -r R > host.age` per host, the S3
              prefix downloaded with boto3 (a pool of threads) then
              `tar | age`, and `sha256sum` of the four files (a SHA256SUMS)

and prints wall time, MB/s, CPU seconds and the peak RSS of the flow's
process (its own VmHWM, written by the child as it exits: wait4's
ru_maxrss is no measure here, as Linux counts in it the high-water mark of
the memory the child was forked from, this benchmark's own hundreds of MiB),
and the ratio to the anchor, then the exit's RSS by phase from samples
taken every 0.2 s (--sample-every): before its volumes seal, while they seal (median, 95th
percentile, max) and after them (the credentials export's Argon2 is there).
Goals: ratio <= 1.2, peak RSS <= 200 MB. Other jobs on the machine make the
wall times noisy; moto is a Python server, slow and CPU-bound, so the S3
share weighs on both sides.

    .venv/bin/python benchmarks/exit.py [--gib 10] [--files 100000] [--s3-share 0.1]
    .venv/bin/python benchmarks/exit.py --gib 1 --files 10000      # a smaller scale
        [--log FILE]   # the flows' own logs, to see where the time goes
        [--product-venv DIR]   # the flows' processes in an install without [dev]

The development environment (.venv, `.[dev]`) holds packages the product
does not install, and some are imported by the product's own dependencies
when present: httpcore imports trio (selenium's), and the exit's process
holds 106.2 MiB once its flows are imported against 101.7 without it.
`--product-venv DIR` creates DIR once (`pip install -c constraints.txt -e
.`, no extras) and runs the takeover and the exit with its interpreter, as
an operator's worker would.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _bytecode import compile_checkout

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Sets PREFECT_API_URL, PREFECT_HOME and the API auth string at import time (children inherit).
import tests.fixtures.prefect_server as prefect_fixture  # noqa: E402
from tests.fixtures.s3 import REGION, MotoServer, fill_bucket  # noqa: E402
from tests.fixtures.sshd import SshdFactory, SshdHost  # noqa: E402

MiB = 1 << 20
#: the interpreter of the flows' processes (--product-venv changes it)
CHILD_PYTHON = [sys.executable]
LARGE_MAX = 256 * MiB
CONTRACT = "exit-bench"
# The flow's process. It writes its peak resident size (VmHWM, KiB) to HANDOVER_BENCH_HWM as
# it exits. With HANDOVER_BENCH_RSS=FILE it also writes its resident size every
# 0.2 s (seconds since start, KiB, anonymous and file-backed KiB, VmHWM so far, threads, then
# the names of the threads running) so what grows with the data can be told from the fixed
# cost of the imports and the Prefect engine, and when the peak was reached.
SAMPLER = (
    "import atexit, os, threading, time\n"
    "def _hwm(path):\n"
    "    with open('/proc/self/status') as status:\n"
    "        peak = next(l for l in status if l.startswith('VmHWM')).split()[1]\n"
    "    with open(path, 'w') as out:\n"
    "        out.write(peak)\n"
    "if os.environ.get('HANDOVER_BENCH_HWM'):\n"
    "    atexit.register(_hwm, os.environ['HANDOVER_BENCH_HWM'])\n"
    "def _sample(path):\n"
    "    t0 = time.monotonic()\n"
    "    with open(path, 'w') as out:\n"
    "        while True:\n"
    "            with open('/proc/self/status') as status:\n"
    "                kib = {l.split(':')[0]: l.split()[1] for l in status\n"
    "                       if l.startswith(('VmRSS', 'VmHWM', 'RssAnon', 'RssFile'))}\n"
    "            names = sorted({t.name for t in threading.enumerate()\n"
    "                            if not t.name.startswith(('Thread-', 'Dummy', 'Main'))})\n"
    "            out.write(f\"{time.monotonic() - t0:.2f} {kib['VmRSS']} anon={kib['RssAnon']}\"\n"
    "                      f\" file={kib['RssFile']} hwm={kib['VmHWM']}\"\n"
    '                      f" threads={threading.active_count()}"\n'
    "                      f\" {' '.join(names)}\\n\")\n"
    "            out.flush()\n"
    "            time.sleep(float(os.environ.get('HANDOVER_BENCH_RSS_EVERY', '0.2')))\n"
    "if os.environ.get('HANDOVER_BENCH_RSS'):\n"
    "    threading.Thread(target=_sample, args=(os.environ['HANDOVER_BENCH_RSS'],),\n"
    "                     daemon=True).start()\n"
    # --tracemalloc FILE: the Python allocations alive when RSS was highest, by line.
    "def _traced(path):\n"
    "    import tracemalloc\n"
    "    best = [0, None]\n"
    "    def watch():\n"
    "        while True:\n"
    "            with open('/proc/self/status') as status:\n"
    "                rss = int(next(l for l in status if l.startswith('VmRSS')).split()[1])\n"
    "            if rss > best[0] + 8192:\n"
    "                best[0], best[1] = rss, tracemalloc.take_snapshot()\n"
    "            time.sleep(0.5)\n"
    "    def report():\n"
    "        if best[1] is None:\n"
    "            return\n"
    "        stats = best[1].statistics('lineno')\n"
    "        with open(path, 'w') as out:\n"
    "            total = sum(s.size for s in stats) >> 20\n"
    "            out.write(f'RSS {best[0] >> 10} MiB, traced {total} MiB\\n')\n"
    "            out.writelines(f'{s}\\n' for s in stats[:40])\n"
    "            for s in best[1].statistics('traceback')[:8]:\n"
    "                out.write(f'\\n{s}\\n')\n"
    "                out.writelines(f'    {line}\\n' for line in s.traceback.format())\n"
    "    tracemalloc.start(16)\n"
    "    atexit.register(report)\n"
    "    threading.Thread(target=watch, daemon=True).start()\n"
    "if os.environ.get('HANDOVER_BENCH_TRACEMALLOC'):\n"
    "    _traced(os.environ['HANDOVER_BENCH_TRACEMALLOC'])\n"
    # --memray FILE: every allocation, native ones included (`pip install memray`; then
    # `memray tree FILE` or `memray flamegraph FILE` show what was alive at the peak).
    # --heap-stats: once the exports' threads are gone, the flow's process prints to its log
    # how Python's allocator and malloc hold its memory (what was not given back), and its
    # largest mappings by resident size, then what a malloc_trim(0) gives back at that moment.
    "def _heap_stats():\n"
    "    import ctypes, signal, sys\n"
    "    trim = [False]  # only after the exports: a trim as they start would change them\n"
    "    def dump(*_):\n"
    "        sys._debugmallocstats()\n"
    "        import collections, gc\n"
    "        counts, sizes = collections.Counter(), collections.Counter()\n"
    "        for obj in gc.get_objects():\n"
    "            name = type(obj).__qualname__\n"
    "            counts[name] += 1\n"
    "            sizes[name] += sys.getsizeof(obj)\n"
    "        print('objects the collector tracks, by type (count, shallow bytes):',\n"
    "              file=sys.stderr)\n"
    "        for name, size in sizes.most_common(15):\n"
    "            print(f'{counts[name]:>9} {size:>12,} {name}', file=sys.stderr)\n"
    "        ctypes.CDLL('libc.so.6').malloc_stats()\n"
    "        maps, head = [], ''\n"
    "        with open('/proc/self/smaps') as smaps:\n"
    "            for line in smaps:\n"
    "                if line[0] in '0123456789abcdef' and ' ' in line and '-' in line.split()[0]:\n"
    "                    head = line.strip()\n"
    "                elif line.startswith('Rss:'):\n"
    "                    maps.append((int(line.split()[1]), head))\n"
    "        maps.sort(reverse=True)\n"
    "        print(f'largest of {len(maps)} mappings, RSS KiB (all: {sum(m[0] for m in maps)}):',\n"
    "              file=sys.stderr)\n"
    "        for rss, head in maps[:25]:\n"
    "            print(f'{rss:>8} {head}', file=sys.stderr)\n"
    "        def rss():\n"
    "            with open('/proc/self/status') as status:\n"
    "                return int(next(l for l in status if l.startswith('VmRSS')).split()[1])\n"
    "        if not trim[0]:\n"
    "            return\n"
    "        before = rss()\n"
    "        ctypes.CDLL('libc.so.6').malloc_trim(0)\n"
    "        print(f'malloc_trim(0): RSS {before >> 10} -> {rss() >> 10} MiB', file=sys.stderr)\n"
    "    signal.signal(signal.SIGUSR1, dump)\n"
    "    def watch():\n"
    "        busy, calm = False, 0\n"
    "        while True:\n"
    "            if threading.active_count() > 20:\n"
    "                if not busy:\n"
    "                    print('--- as the exports start', file=sys.stderr)\n"
    "                    os.kill(os.getpid(), signal.SIGUSR1)\n"
    "                busy, calm = True, 0\n"
    "            elif busy:\n"
    "                calm += 1\n"
    "                if calm >= 6:  # 3 s without the exports' threads: they are over\n"
    "                    trim[0] = True\n"
    "                    print('--- after the exports', file=sys.stderr)\n"
    "                    os.kill(os.getpid(), signal.SIGUSR1)\n"
    "                    return\n"
    "            time.sleep(0.5)\n"
    "    threading.Thread(target=watch, daemon=True).start()\n"
    "if os.environ.get('HANDOVER_BENCH_HEAPSTATS'):\n"
    "    _heap_stats()\n"
    "if os.environ.get('HANDOVER_BENCH_MEMRAY'):\n"
    "    import memray\n"
    "    _tracker = memray.Tracker(os.environ['HANDOVER_BENCH_MEMRAY'])\n"
    "    _tracker.__enter__()\n"
    "    atexit.register(_tracker.__exit__, None, None, None)\n"
)
CHILD = (
    SAMPLER + "import sys\n"
    "from pathlib import Path\n"
    "from flows.lifecycle import run_phase\n"
    "ok = run_phase(sys.argv[1], Path(sys.argv[2]), auto_accept=True, fresh=True)\n"
    "sys.exit(0 if ok else 1)\n"
)
# The floor: the same process and imports running a flow of one task that does nothing
# (--floor). Its peak RSS is the fixed cost no change to the exit's own work can lower.
FLOOR_CHILD = (
    SAMPLER + "import sys\n"
    "import flows.lifecycle, flows.reversibility  # the exit's imports, as in CHILD\n"
    "from prefect import flow, task\n"
    "@task\n"
    "def nothing() -> int:\n"
    "    return 1\n"
    "@flow(name='floor')\n"
    "def floor() -> int:\n"
    "    return nothing.submit().result() + nothing()\n"
    "sys.exit(0 if floor(return_state=True).is_completed() else 1)\n"
)


def rss_by_phase(trace: Path, every: float = 0.2) -> str:
    """The exit's RSS before, while and after its volumes seal, from the sampler's trace.

    A sample is "while the volumes seal" when a seal's thread (tar-write) is alive.
    """
    samples: list[tuple[float, int, bool]] = []
    raised: tuple[float, int] = (0.0, 0)  # when VmHWM last rose (first sample after), to what
    for line in trace.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[1].isdigit():
            samples.append((float(fields[0]), int(fields[1]) >> 10, "tar-write" in fields))
            hwm = next((int(f[4:]) >> 10 for f in fields if f.startswith("hwm=")), 0)
            if hwm > raised[1]:
                raised = (float(fields[0]), hwm)
    sealing = [i for i, (_, _, busy) in enumerate(samples) if busy]
    if not sealing:
        return "RSS by phase: no sample while the volumes sealed"
    during = sorted(mib for _, mib, busy in samples if busy)
    before = max((mib for _, mib, _ in samples[: sealing[0]]), default=0)
    after = max((mib for _, mib, _ in samples[sealing[-1] + 1 :]), default=0)
    peak_t, peak, _ = max(samples, key=lambda sample: sample[1])
    where = (
        "while the volumes seal"
        if samples[sealing[0]][0] <= peak_t <= samples[sealing[-1]][0]
        else ("after them" if peak_t > samples[sealing[-1]][0] else "before them")
    )
    return (
        f"exit RSS by phase (samples every {every:g} s): before the volumes seal <= {before} MiB;"
        f" while they seal median {statistics.median(during):.0f}, 95th percentile"
        f" {during[int(len(during) * 0.95)]}, max {during[-1]} MiB; after them <= {after} MiB;"
        f" highest sample {peak} MiB at {peak_t:.0f} s ({where}); the peak (VmHWM) last"
        f" rose to {raised[1]} MiB in the {every:g} s before {raised[0]:.2f} s"
    )


def split_bytes(total: int, small_files: int) -> tuple[list[int], list[int]]:
    """(sizes of the small files, sizes of the large files) adding up to about `total`."""
    small = [1024 + (i * 7919) % 7168 for i in range(small_files)]  # 1-8 KiB
    rest = max(0, total - sum(small))
    large = []
    while rest > 0:
        size = min(rest, LARGE_MAX)
        large.append(size)
        rest -= size
    return small, large


def write_tree(root: Path, small: list[int], large: list[int]) -> None:
    """Random data written quickly: one random block, each file a different slice."""
    block = os.urandom(4 * MiB)
    for index, size in enumerate(large):
        path = root / "large" / f"blob-{index}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            left, step = size, 0
            while left > 0:
                piece = (index.to_bytes(4, "big") + step.to_bytes(4, "big") + block[8:])[:left]
                handle.write(piece)
                left -= len(piece)
                step += 1
    for index, size in enumerate(small):
        path = root / "small" / f"d{index // 1000:03d}" / f"f{index:06d}.txt"
        if index % 1000 == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
        start = (index * 104729) % (len(block) - size)
        path.write_bytes(block[start : start + size])


def fill_s3(client: Any, bucket: str, small: list[int], large: list[int]) -> None:
    block = os.urandom(4 * MiB)
    client.create_bucket(Bucket=bucket)
    objects = {
        f"data/small/d{i // 1000:03d}/f{i:06d}.txt": block[(i * 104729) % MiB :][:size]
        for i, size in enumerate(small)
    }
    fill_bucket(client, bucket, objects, workers=16)

    class Pattern:
        def __init__(self, size: int, seed: int) -> None:
            self.left, self.step, self.seed = size, 0, seed

        def read(self, size: int = -1) -> bytes:
            size = min(self.left, 4 * MiB if size < 0 else size)
            out = bytearray()
            while len(out) < size:  # exactly `size`: s3transfer takes a short read for EOF
                self.step += 1
                out += self.seed.to_bytes(4, "big") + self.step.to_bytes(4, "big") + block[8:]
            self.left -= size
            return bytes(out[:size])

    for index, size in enumerate(large):
        client.upload_fileobj(Pattern(size, index), bucket, f"data/large/blob-{index}.bin")


def playbook(ws: Any, hosts: list[SshdHost], trees: list[Path], moto: MotoServer) -> dict[str, Any]:
    from handover.secrets.references import Secret
    from handover.secrets.vault import Kind, Vault, VaultEntry
    from tests.remote_estate import remote_playbook

    vault = Vault(ws.contract)
    vault.init()
    vault.add(
        VaultEntry(
            name="s3-ops", kind=Kind.API_KEY, username="AKIAEXITBENCH", url=moto.endpoint_url
        ),
        Secret(b"exit-bench-secret"),
    )
    known = ws.contract_dir / "known_hosts"
    for host in hosts:
        host.write_known_hosts(known)
    datasets: list[dict[str, Any]] = [
        {"name": f"{host.name}-data", "host": host.name, "paths": [str(tree)]}
        for host, tree in zip(hosts, trees, strict=True)
    ]
    datasets.append({"name": "s3-data", "s3": {"bucket": "client-data", "prefix": "data/"}})
    data = remote_playbook(
        ws,
        [host.host_dict() for host in hosts],
        datasets,
        s3={
            "endpoint_url": moto.endpoint_url,
            "region": REGION,
            "addressing_style": "path",
            "access_key_id": f"vault:{ws.contract}/s3-ops#username",
            "secret_access_key": f"vault:{ws.contract}/s3-ops",
        },
    )
    data["documentation"] = {"sources": []}  # the demo's sources name the demo's hosts
    return data


def timed_child(
    argv: list[str], *, shell: bool = False, log: Path | None = None
) -> tuple[float, float, int]:
    """(wall s, CPU s of the child and what it waited for, peak RSS KiB) of one command.

    The peak RSS is the VmHWM a CHILD-style script writes as it exits (0 for
    other commands). The child's output (the flow's logs, with each task's
    start and end) goes to `log` when given, and is shown when the command fails.
    """
    hwm = Path(tempfile.mkdtemp(prefix="handover-exit-hwm-")) / "hwm"
    started = time.perf_counter()
    process = subprocess.Popen(
        argv,
        shell=shell,
        executable="/bin/bash" if shell else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "HANDOVER_BENCH_HWM": str(hwm)},
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if log is not None:
        log.write_bytes(output)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {argv}\n{output.decode(errors='replace')[-3000:]}")
    peak = int(hwm.read_text()) if hwm.exists() else 0
    shutil.rmtree(hwm.parent, ignore_errors=True)
    return elapsed, usage.ru_utime + usage.ru_stime, peak


def run_phase_child(phase: str, path: Path, log: Path | None) -> tuple[float, float, int]:
    where = None if log is None else log.with_name(f"{log.name}.{phase}")
    return timed_child([*CHILD_PYTHON, "-c", CHILD, phase, str(path)], log=where)


def anchor(
    hosts: list[SshdHost], trees: list[Path], moto: MotoServer, recipient: str, out: Path
) -> tuple[float, float]:
    """The same data with shell tools, the four datasets at once; (wall s, CPU s)."""
    from handover.connectors.s3.source import WORKERS
    from tests.fixtures.s3 import make_client

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    known = out / "known_hosts"
    for host in hosts:
        host.write_known_hosts(known)
    pipes = []
    for host, tree in zip(hosts, trees, strict=True):
        ssh = (
            f"ssh -p {host.port} -i {host.key_path} -o UserKnownHostsFile={known}"
            f" -o BatchMode=yes -o IdentitiesOnly=yes {host.user}@{host.address}"
        )
        pipes.append(
            f"( set -o pipefail; {ssh} tar -cf - -C {tree.parent} {tree.name}"
            f" | age -r {recipient} > {out}/{host.name}.age ) &"
        )
    shell = " ".join(pipes) + " wait"
    started = time.perf_counter()
    cpu0 = _children_cpu()
    with ThreadPoolExecutor(1) as one:
        hosts_done = one.submit(
            subprocess.run, shell, shell=True, executable="/bin/bash", check=True
        )
        client = make_client(moto.endpoint_url, max_pool_connections=64)
        keys = [
            o["Key"]
            for page in client.get_paginator("list_objects_v2").paginate(
                Bucket="client-data", Prefix="data/"
            )
            for o in page.get("Contents", [])
        ]
        download = out / "s3"

        def fetch(key: str) -> None:
            dest = download / key
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(dest, "wb") as handle:
                client.download_fileobj("client-data", key, handle)

        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(fetch, keys))
        subprocess.run(
            f"set -o pipefail; tar -cf - -C {download} data | age -r {recipient} > {out}/s3.age",
            shell=True,
            executable="/bin/bash",
            check=True,
        )
        hosts_done.result()
    subprocess.run(
        f"cd {out} && sha256sum *.age > SHA256SUMS", shell=True, executable="/bin/bash", check=True
    )
    own = os.times()
    return time.perf_counter() - started, _children_cpu() - cpu0 + own.user + own.system


def _children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


def start_prefect() -> None:
    from flows import server

    saved = os.environ.get("HANDOVER_HOME")
    os.environ["HANDOVER_HOME"] = str(prefect_fixture._HOME)
    try:
        server.start(port=prefect_fixture._PORT)
        server.ensure_automations()
    finally:
        if saved is None:
            os.environ.pop("HANDOVER_HOME", None)
        else:
            os.environ["HANDOVER_HOME"] = saved


def stop_prefect() -> None:
    from flows import server

    os.environ["HANDOVER_HOME"] = str(prefect_fixture._HOME)
    server.stop()


def product_venv(folder: Path) -> Path:
    """The interpreter of a virtual environment with the product's dependencies only.

    Created once in `folder` (about a minute) from the pinned constraints,
    the repository installed editable, so it runs this checkout's code.
    """
    python = folder / "bin" / "python"
    stamp = folder / ".installed"
    if not stamp.exists():
        print(f"creating {folder} (the product's dependencies, no [dev])", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(folder)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             "-c", str(ROOT / "constraints.txt"), "-e", str(ROOT)],
            check=True,
        )  # fmt: skip
        stamp.touch()
    return python


def floor() -> None:
    """Peak RSS of a flow of one empty task in the exit's child process, three times."""
    start_prefect()
    try:
        for _ in range(3):
            wall, cpu, rss = timed_child([*CHILD_PYTHON, "-c", FLOOR_CHILD])
            print(
                f"floor (a flow of one empty task, the exit's imports): peak RSS"
                f" {rss / 1024:.0f} MiB, {wall:.1f} s, CPU {cpu:.1f} s",
                flush=True,
            )
        wall, cpu, rss = timed_child(
            [*CHILD_PYTHON, "-c", SAMPLER + "import flows.lifecycle, flows.reversibility"]
        )
        print(f"imports alone (flows.lifecycle, .reversibility): peak RSS {rss / 1024:.0f} MiB")
    finally:
        stop_prefect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=10.0, help="data in the exit (GiB)")
    parser.add_argument("--files", type=int, default=100_000, help="small files in the exit")
    parser.add_argument("--s3-share", type=float, default=0.1, help="part of both on S3")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--log", type=Path, default=None, help="write the flows' output to LOG.takeover, ..."
    )
    parser.add_argument(
        "--rss-trace",
        type=Path,
        default=None,
        help="keep the exit's RSS samples (every 0.2 s, always taken: the summary by phase"
        " comes from them) in this file",
    )
    parser.add_argument(
        "--sample-every",
        type=float,
        default=0.2,
        help="seconds between two RSS samples (0.02 catches spikes the default misses;"
        " the sampler then costs some CPU)",
    )
    parser.add_argument(
        "--memray",
        type=Path,
        help="the exit's process records every allocation to this file (memray, not a"
        " dependency: `pip install memray`)",
    )
    parser.add_argument(
        "--heap-stats",
        action="store_true",
        help="the exit's process prints its allocators' statistics to its log (--log) once"
        " the exports end",
    )
    parser.add_argument(
        "--no-anchor",
        action="store_true",
        help="skip the anchor (memory work: no ratio is printed)",
    )
    parser.add_argument(
        "--tracemalloc",
        type=Path,
        help="the exit's process writes to this file its Python allocations at its highest RSS,"
        " by line, then the 8 largest by call stack (16 frames: slows it about 20 times and"
        " inflates its RSS; for finding memory, not for timing)",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="only the peak RSS of a flow that does nothing (same process and imports)",
    )
    parser.add_argument(
        "--product-venv",
        type=Path,
        help="run the flows' processes in this virtual environment, created once with the"
        " product's dependencies only (no [dev]: no trio...)",
    )
    args = parser.parse_args()
    compile_checkout()  # timed as an installed handover runs: see _bytecode.py
    if args.product_venv is not None:
        CHILD_PYTHON[:] = [str(product_venv(args.product_venv.resolve()))]
    if args.floor:
        floor()
        return
    for tool in ("ssh", "sshd", "age", "tar", "sha256sum"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} not found: apt-get install -y openssh-server age tar")

    import pytest

    from handover.bundle.age import parse_recipient
    from tests.remote_estate import make_remote_workspace, write_playbook

    work = Path(tempfile.mkdtemp(prefix="handover-exit-bench-"))
    monkeypatch = pytest.MonkeyPatch()
    total = int(args.gib * (1 << 30))
    s3_bytes = int(total * args.s3_share)
    s3_files = int(args.files * args.s3_share)
    host_bytes = (total - s3_bytes) // 3
    host_files = (args.files - s3_files) // 3
    moto = MotoServer()
    started = time.perf_counter()
    start_prefect()
    try:
        with SshdFactory(work / "sshd") as factory:
            hosts = [factory.start(f"host{i}") for i in (1, 2, 3)]
            trees = []
            for host in hosts:
                tree = host.data_root / "export"
                write_tree(tree, *split_bytes(host_bytes, host_files))
                trees.append(tree)
            moto.start()
            fill_s3(
                moto.client(max_pool_connections=32),
                "client-data",
                *split_bytes(s3_bytes, s3_files),
            )
            ws = make_remote_workspace(work, monkeypatch, CONTRACT)
            path = write_playbook(ws, playbook(ws, hosts, trees, moto))
            recipient = ws.keys.client_recipients.read_text().split()[0]
            parse_recipient(recipient)
            subprocess.run(["sync"], check=False)
            print(
                f"exit: {total / 1e9:.2f} GB, {3 * host_files + s3_files} small files plus large"
                f" ones; 3 SSH hosts x {host_bytes / 1e9:.2f} GB, S3 {s3_bytes / 1e9:.2f} GB;"
                f" set up in {time.perf_counter() - started:.0f} s; the flows run with"
                f" {CHILD_PYTHON[0]}",
                flush=True,
            )
            wall, cpu, rss = run_phase_child("takeover", path, args.log)
            print(
                f"takeover (setup, baseline of every dataset, nothing sealed): {wall:.1f} s,"
                f" peak RSS {rss / 1024:.0f} MiB",
                flush=True,
            )
            a_wall, a_cpu = (
                (float("nan"), float("nan"))
                if args.no_anchor
                else anchor(hosts, trees, moto, recipient, work / "anchor")
            )
            shutil.rmtree(work / "anchor", ignore_errors=True)
            print(f"anchor: {a_wall:.1f} s", flush=True)
            trace = args.rss_trace if args.rss_trace is not None else work / "exit-rss.trace"
            os.environ["HANDOVER_BENCH_RSS"] = str(trace)
            os.environ["HANDOVER_BENCH_RSS_EVERY"] = str(args.sample_every)
            if args.tracemalloc is not None:
                os.environ["HANDOVER_BENCH_TRACEMALLOC"] = str(args.tracemalloc)
            if args.memray is not None:
                os.environ["HANDOVER_BENCH_MEMRAY"] = str(args.memray)
            if args.heap_stats:
                os.environ["HANDOVER_BENCH_HEAPSTATS"] = "1"
            wall, cpu, rss = run_phase_child("reversibility", path, args.log)
            os.environ.pop("HANDOVER_BENCH_RSS", None)
            os.environ.pop("HANDOVER_BENCH_RSS_EVERY", None)
            os.environ.pop("HANDOVER_BENCH_TRACEMALLOC", None)
            os.environ.pop("HANDOVER_BENCH_MEMRAY", None)
            os.environ.pop("HANDOVER_BENCH_HEAPSTATS", None)
            print(
                f"handover exit: {wall:.1f} s ({total / wall / 1e6:.0f} MB/s), CPU {cpu:.1f} s,"
                f" peak RSS {rss / 1024:.0f} MiB (goal <= 200 MB)\n"
                f"anchor (ssh|tar|age x3, boto3 + tar|age, sha256sum): {a_wall:.1f} s"
                f" ({total / a_wall / 1e6:.0f} MB/s), CPU {a_cpu:.1f} s (moto's excluded)\n"
                f"ratio {wall / a_wall:.2f} (goal <= 1.2), CPU ratio {cpu / a_cpu:.2f};"
                f" load average {os.getloadavg()[0]:.1f}\n{rss_by_phase(trace, args.sample_every)}"
            )
    finally:
        moto.stop()
        stop_prefect()
        monkeypatch.undo()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work folder kept: {work}")


if __name__ == "__main__":
    main()
