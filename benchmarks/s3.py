"""S3 benchmark against a local moto server: seal from a bucket, deliver a bundle to a bucket.

Starts its own `moto_server` on loopback (the test fixture's code, used as a
library), fills a bucket (small objects plus a few large ones), then
alternates --runs times, in this process:

    seal     handover: BundleWriter(folder).add_volume(S3PrefixSource) + finish
             anchor:   boto3 download_fileobj of every object into a folder
                       (a pool of the same number of threads), then
                       `tar -cf - -C DIR . | age -r RECIPIENT > out.tar.age`
    deliver  handover: every file of the sealed bundle through S3Target.open_write
             anchor:   boto3 upload_file of the same files (default TransferConfig)

Prints the median wall time of each, the ratio handover/anchor, the peak RSS
of this process during each handover phase (sampled from /proc every 5 ms),
and the CPU seconds moto's process spent in each phase: moto is a Python
server, slow and CPU-bound on a 2-core machine, so much of every figure is its.

    .venv/bin/python benchmarks/s3.py [--runs 3] [--small 2000] [--large 2] [--large-mib 128]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _bytecode import compile_checkout

from handover.bundle.age import X25519Identity
from handover.bundle.sshsig import SigningKey
from handover.bundle.writer import BundleWriter
from handover.connectors.s3 import S3PrefixSource, S3Target
from handover.connectors.s3.source import WORKERS
from tests.fixtures.s3 import MotoServer, fill_bucket, make_client

MiB = 1 << 20


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def measure(moto_pid: int, out: dict[str, float]) -> Iterator[None]:
    """Wall time, peak RSS (MiB) of this process and moto's CPU seconds, into `out`."""
    peak = [_rss_kib()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.005):
            peak[0] = max(peak[0], _rss_kib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    own0 = time.process_time()
    cpu0, t0 = _cpu_s(moto_pid), time.perf_counter()
    try:
        yield
    finally:
        out["wall"] = time.perf_counter() - t0
        out["moto_cpu"] = _cpu_s(moto_pid) - cpu0
        out["own_cpu"] = time.process_time() - own0
        stop.set()
        sampler.join()
        out["rss_mib"] = peak[0] / 1024


def fill(client: Any, bucket: str, small: int, small_size: int, large: int, large_mib: int) -> int:
    client.create_bucket(Bucket=bucket)
    objects = {
        f"data/small/d{i // 500:03d}/f{i:05d}.txt": os.urandom(small_size) for i in range(small)
    }
    fill_bucket(client, bucket, objects, workers=16)
    total = small * small_size
    block = os.urandom(4 * MiB)

    class Gen:
        def __init__(self, n: int) -> None:
            self.left, self.n = large_mib * MiB, n

        def read(self, size: int = -1) -> bytes:
            size = min(self.left, 4 * MiB if size < 0 else size)
            out = bytearray()
            while len(out) < size:  # exactly `size`: s3transfer takes a short read for EOF
                self.n += 1
                out += self.n.to_bytes(8, "big") + block
            self.left -= size
            return bytes(out[:size])

    for n in range(large):
        key = f"data/large/big{n}.bin"
        client.upload_fileobj(Gen(n << 32), bucket, key)
        size = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
        if size != large_mib * MiB:
            raise RuntimeError(f"{key}: uploaded {size} bytes, not {large_mib} MiB")
        total += size
    return total


def seal_handover(client: Any, bucket: str, out: Path, recipient: Any, key: SigningKey) -> None:
    writer = BundleWriter(out, [recipient], key)
    writer.add_volume(S3PrefixSource(client, bucket, "data/", "data"))
    writer.finish()


def seal_anchor(client: Any, bucket: str, work: Path, out: Path, recipient: str) -> None:
    keys = [
        o["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="data/")
        for o in page.get("Contents", [])
    ]

    def download(key: str) -> None:
        dest = work / key
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "wb") as handle:
            client.download_fileobj(bucket, key, handle)

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(download, keys))
    with open(out, "wb") as sink:
        tar = subprocess.Popen(["tar", "-cf", "-", "-C", str(work), "."], stdout=subprocess.PIPE)
        subprocess.run(["age", "-r", recipient], stdin=tar.stdout, stdout=sink, check=True)
        assert tar.stdout is not None
        tar.stdout.close()
        if tar.wait() != 0:
            raise RuntimeError("tar failed")


def deliver_handover(client: Any, bucket: str, prefix: str, bundle: Path) -> None:
    target = S3Target(client, bucket, prefix)
    for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
        with open(path, "rb") as src, target.open_write(path.relative_to(bundle).as_posix()) as dst:
            shutil.copyfileobj(src, dst, MiB)


def deliver_anchor(client: Any, bucket: str, prefix: str, bundle: Path) -> None:
    for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
        client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(bundle).as_posix()}")


def child(phase: str, endpoint: str, bundle: Path) -> None:
    """One handover phase alone in a fresh process: prints its RSS after imports and its peak."""
    client = make_client(endpoint, max_pool_connections=64)
    client.list_buckets()
    base = _rss_kib()
    if phase == "seal":
        identity = X25519Identity.generate()
        seal_handover(client, "bench", bundle, identity.recipient(), SigningKey.generate())
    else:
        deliver_handover(client, "bench", "child", bundle)
    with open("/proc/self/status") as status:  # VmHWM: ru_maxrss would count the parent's
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(f"{base / 1024:.0f} {peak / 1024:.0f}")


def clean_rss(endpoint: str, work: Path) -> dict[str, tuple[str, str]]:
    """Peak RSS of each handover phase run alone in a fresh process (no other phase's garbage)."""
    figures = {}
    sealed = work / "clean-bundle"
    shutil.rmtree(sealed, ignore_errors=True)
    sealed.mkdir()
    for phase in ("seal", "deliver"):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                phase,
                "--endpoint",
                endpoint,
                "--bundle",
                str(sealed),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        figures[phase] = (out[0], out[1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--small-size", type=int, default=4096)
    parser.add_argument("--large", type=int, default=2)
    parser.add_argument("--large-mib", type=int, default=128)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--child", choices=["seal", "deliver"], help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--bundle", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    compile_checkout()  # timed as an installed handover runs: see _bytecode.py
    if args.child:
        child(args.child, args.endpoint, args.bundle)
        return

    server = MotoServer()
    server.start()
    assert server.proc is not None
    moto_pid = server.proc.pid
    work = Path(args.workdir or tempfile.mkdtemp(prefix="handover-s3-bench-"))
    try:
        client = make_client(server.endpoint_url, max_pool_connections=64)
        total = fill(client, "bench", args.small, args.small_size, args.large, args.large_mib)
        print(
            f"bucket: {args.small} x {args.small_size} B + {args.large} x {args.large_mib} MiB "
            f"= {total / MiB:.0f} MiB; moto at {server.endpoint_url}; {os.cpu_count()} CPUs"
        )
        identity = X25519Identity.generate()
        key = SigningKey.generate()
        results: dict[str, list[dict[str, float]]] = {}

        def run(name: str, fn: Callable[[], None]) -> None:
            figures: dict[str, float] = {}
            with measure(moto_pid, figures):
                fn()
            results.setdefault(name, []).append(figures)

        for i in range(args.runs):
            bundle = work / f"bundle-{i}"
            shutil.rmtree(bundle, ignore_errors=True)
            bundle.mkdir()
            anchor_dir = work / f"anchor-{i}"
            anchor_out = work / "anchor.tar.age"
            recipient = identity.recipient()
            run("seal handover", partial(seal_handover, client, "bench", bundle, recipient, key))
            run(
                "seal anchor",
                partial(seal_anchor, client, "bench", anchor_dir, anchor_out, str(recipient)),
            )
            shutil.rmtree(anchor_dir, ignore_errors=True)
            run("deliver handover", partial(deliver_handover, client, "bench", f"h{i}", bundle))
            run("deliver anchor", partial(deliver_anchor, client, "bench", f"a{i}", bundle))
            if i:
                shutil.rmtree(work / f"bundle-{i - 1}", ignore_errors=True)
            print(f"run {i + 1}/{args.runs} done", flush=True)

        def median(name: str, field: str) -> float:
            return statistics.median(r[field] for r in results[name])

        print(
            f"{'phase':<18}{'median s':>10}{'moto CPU s':>12}{'own CPU s':>11}{'peak RSS MiB':>14}"
        )
        for name in results:
            print(
                f"{name:<18}{median(name, 'wall'):>10.2f}{median(name, 'moto_cpu'):>12.2f}"
                f"{median(name, 'own_cpu'):>11.2f}"
                f"{max(r['rss_mib'] for r in results[name]):>14.0f}"
            )
        for what in ("seal", "deliver"):
            ratio = median(f"{what} handover", "wall") / median(f"{what} anchor", "wall")
            print(f"{what}: handover / anchor = {ratio:.2f}x")
        for phase, (base, peak) in clean_rss(server.endpoint_url, work).items():
            print(
                f"{phase} handover alone in a fresh process: RSS {base} MiB after imports, "
                f"peak {peak} MiB"
            )
        print(
            "own CPU and peak RSS are of this process (the anchor's age and tar are subprocesses"
            " and not counted)"
        )
    finally:
        server.stop()
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
