"""Benchmark `handover seal` against the shell-tool anchors, and against the hardware limit.

Builds a tree (by default 2 x 256 MiB of random data plus 10,000 small
files, the tree of issue #16) under --workdir, then for each CPU set
(`taskset -c 0`, then `taskset -c 0,1`: how the work scales from one core
to two) alternates --runs times:

    anchor:     tar -cf - TREE | age -r R > out.age
    std tools:  the same guarantees with standard tools: the plaintext and the
                ciphertext hashed on the way (tar | tee >(sha256sum) | age |
                tee >(sha256sum) > out.age), then `sha256sum` of every file
    std tools, openssl: the same with `openssl dgst -sha256`, which takes the
                CPU's SHA instructions where coreutils' sha256sum does not: the
                best standard tools do here for the same guarantees
    handover:   handover seal TREE --to R --sign-key K --out DIR
    handover, several datasets: one volume per top-level dataset (each large
                file, the small-file folder) sealed in parallel (--jobs N),
                against the same single `tar | age` anchor

It prints the median (and best) wall time and CPU seconds (user + system of
the command and the processes it waited for: tar, age, sha256sum) of each,
the ratios to the anchor and to the standard-tools pipeline, handover's peak
RSS, and the hardware limit: the CPU seconds of SHA-256 on the plaintext,
ChaCha20-Poly1305 and SHA-256 on the ciphertext for this much data (measured
here, in this process, with the libraries handover uses), divided by the
cores, and the floor: the seal's fixed time (a one-file tree) plus the
CPU of `tar` and of the crypto, divided by the cores. Other jobs on the
machine make wall times noisy: CPU seconds are the steadier figure, and the
ratios are taken within one run, against an anchor run moments before.

    .venv/bin/python benchmarks/seal.py [--runs 3] [--large-mib 256] [--small-files 10000]
        [--cpus 0 0,1] [--verify] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from _bytecode import compile_checkout
from _timing import run_timed as timed
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

HANDOVER = [sys.executable, "-c", "import sys; from handover.cli import main; main()"]
GIB = 1 << 30


@dataclass
class Runs:
    """The (wall s, CPU s, peak RSS KiB) of each run of one command."""

    samples: list[tuple[float, float, int]] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return statistics.median(s[0] for s in self.samples)

    @property
    def best(self) -> float:
        return min(s[0] for s in self.samples)

    @property
    def cpu(self) -> float:
        return statistics.median(s[1] for s in self.samples)

    @property
    def rss_mib(self) -> float:
        return max(s[2] for s in self.samples) / 1024


def build_tree(tree: Path, large_files: int, large_mib: int, small_files: int) -> tuple[int, int]:
    """Write the tree quickly from repeated random blocks; return (files, bytes)."""
    if tree.exists():
        shutil.rmtree(tree)
    block = os.urandom(4 << 20)
    total = 0
    count = 0
    for i in range(large_files):
        path = tree / "large" / f"big{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            for j in range(large_mib // 4):
                handle.write(i.to_bytes(4, "big") + j.to_bytes(4, "big") + block[8:])
        total += large_mib << 20
        count += 1
    small = os.urandom(1 << 20)
    for i in range(small_files):
        path = tree / "small" / f"d{i // 500:03d}" / f"f{i:05d}.txt"
        if i % 500 == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
        size = (i * 7919) % 8192
        start = (i * 104729) % (len(small) - size)
        path.write_bytes(small[start : start + size])
        total += size
        count += 1
    return count, total


def _thread_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime + usage.ru_stime


def primitive_costs(mib: int = 256) -> tuple[float, float]:
    """CPU seconds per GiB of SHA-256 (hashlib, 4 MiB updates) and of ChaCha20-Poly1305.

    ChaCha20-Poly1305 as age uses it: 64 KiB chunks sealed with `encrypt_into`.
    Each is timed on this thread alone (best of three), so other jobs on the
    machine weigh on it as little as they can.
    """
    data = memoryview(os.urandom(4 << 20))
    rounds = mib // 4
    sha_costs, chacha_costs = [], []
    aead = ChaCha20Poly1305(os.urandom(32))
    out = memoryview(bytearray(64 * 1024 + 16))
    for _ in range(3):
        start = _thread_cpu()
        sha = hashlib.sha256()
        for _ in range(rounds):
            sha.update(data)
        sha_costs.append((_thread_cpu() - start) * 1024 / mib)
        start = _thread_cpu()
        counter = 0
        for _ in range(rounds):
            for offset in range(0, len(data), 64 * 1024):
                nonce = counter.to_bytes(12, "big")
                aead.encrypt_into(nonce, data[offset : offset + 64 * 1024], None, out)
                counter += 1
        chacha_costs.append((_thread_cpu() - start) * 1024 / mib)
    return min(sha_costs), min(chacha_costs)


def floor_costs(setup: Setup) -> tuple[float, float]:
    """(tar's CPU seconds for the tree, handover's fixed wall time), best of three each.

    Together with the crypto they make the floor no seal of this tree can
    beat on this machine: what handover does before `tar` starts (the
    interpreter, its imports) and after the stream ends (index, README,
    signature, fsync) is serial, and the stream needs at least the CPU of
    `tar` (reading the files, writing the pipe, here read by `cat` as the
    seal's reader would) and of the three crypto passes. The fixed time is a
    seal of a one-file tree. The volume's writes are left out, so the floor
    is, if anything, low.
    """
    work = setup.workdir
    tar = f"tar -cf - -b 2048 --format=posix -C {work} tree | cat > /dev/null"
    tar_cpu = min(timed(tar, shell=True)[1] for _ in range(3))
    one = work / "one-file"
    one.mkdir(exist_ok=True)
    (one / "file").write_bytes(b"one file\n")
    seal = [*HANDOVER, "seal", str(one), "--to", setup.recipient,
            "--sign-key", str(setup.sign_key), "--out", str(work / "bundle-one")]  # fmt: skip
    fixed = []
    for _ in range(3):
        shutil.rmtree(work / "bundle-one", ignore_errors=True)
        fixed.append(timed(seal)[0])
    shutil.rmtree(work / "bundle-one", ignore_errors=True)
    shutil.rmtree(one)
    return tar_cpu, min(fixed)


def _tree_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def sha_ni() -> str:
    """Whether the CPU has the SHA extensions (hashlib takes them through OpenSSL)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    return "yes" if " sha_ni" in flags else "no"


@dataclass
class Setup:
    workdir: Path
    tree: Path
    recipient: str
    sign_key: Path
    datasets: list[Path]


def commands(setup: Setup, cpus: str) -> dict[str, list[str] | str]:
    """The commands of one CPU set, each pinned with taskset."""
    work, tree, recipient = setup.workdir, setup.tree, setup.recipient
    pin = f"taskset -c {cpus} "
    anchor = (
        f"set -o pipefail; {pin}tar -cf - -C {work} tree | {pin}age -r {recipient} > {work}/a.age"
    )

    def std_pipeline(sha256: str, out: str) -> str:
        # FIFOs rather than >(...): the shell waits for both hashers, so their CPU counts
        return (
            f"set -o pipefail; {pin}{sha256} < {work}/plain.fifo > {work}/plain.sum &"
            f" {pin}{sha256} < {work}/cipher.fifo > {work}/cipher.sum &"
            f" {pin}tar -cf - -C {work} tree | {pin}tee {work}/plain.fifo"
            f" | {pin}age -r {recipient} | {pin}tee {work}/cipher.fifo > {work}/{out} && wait"
            f" && cd {tree} && find . -type f -print0 | {pin}xargs -0 {sha256} > {work}/files.sum"
        )

    std = std_pipeline("sha256sum", "s.age")
    # OpenSSL's SHA-256 (SHA-NI here) in place of coreutils' (none): what standard tools
    # need at best for these guarantees on this machine.
    std_fast = std_pipeline("openssl dgst -sha256 -r", "o.age")
    seal = ["taskset", "-c", cpus, *HANDOVER, "seal", str(tree), "--to", recipient,
            "--sign-key", str(setup.sign_key), "--out", str(work / "bundle")]  # fmt: skip
    multi = ["taskset", "-c", cpus, *HANDOVER, "seal", *map(str, setup.datasets),
             "--jobs", str(len(setup.datasets)), "--to", recipient,
             "--sign-key", str(setup.sign_key), "--out", str(work / "bundle-multi")]  # fmt: skip
    return {
        "anchor": anchor,
        "std tools": std,
        "std tools, openssl": std_fast,
        "handover": seal,
        "handover, N volumes": multi,
    }


#: what the commands write: removed before each run, and the outputs of the commands before
OUTPUTS = (
    "a.age",
    "s.age",
    "o.age",
    "plain.sum",
    "cipher.sum",
    "files.sum",
    "bundle",
    "bundle-multi",
)


def clear_outputs(workdir: Path) -> None:
    """Remove every command's output and flush dirty pages before the next command is timed.

    Without the flush, the ~550 MB a command leaves in the page cache is
    written back while the next one runs: its system time then swung
    0.6-1.8 s for the same `tar | age` on this virtual disk, and the command
    after the standard tools (handover) paid for their two outputs. Each
    command now starts with nothing of the others' left to write.
    """
    for name in OUTPUTS:
        path = workdir / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    os.sync()


def run_set(setup: Setup, cpus: str, runs: int) -> dict[str, Runs]:
    results = {name: Runs() for name in commands(setup, cpus)}
    for run in range(1, runs + 1):
        for name, command in commands(setup, cpus).items():
            clear_outputs(setup.workdir)
            results[name].samples.append(timed(command, shell=isinstance(command, str)))
        print(
            f"  cpus {cpus} run {run}: "
            + ", ".join(f"{n} {r.samples[-1][0]:.2f} s" for n, r in results.items()),
            flush=True,
        )
    return results


def report(
    cpus: str, results: dict[str, Runs], size: int, limit_cpu: float, floor: tuple[float, float]
) -> None:
    cores = len(cpus.split(","))
    anchor, std = results["anchor"], results["std tools"]
    print(f"cpus {cpus} ({cores} core(s)), load average {os.getloadavg()[0]:.1f}:")
    for name, r in results.items():
        ratios = ""
        if name != "anchor":
            ratios = (
                f"; x anchor: wall {r.wall / anchor.wall:.2f} (best {r.best / anchor.best:.2f}),"
                f" CPU {r.cpu / anchor.cpu:.2f}"
            )
        if name.startswith("handover"):
            ratios += f"; x std tools: wall {r.wall / std.wall:.2f}, CPU {r.cpu / std.cpu:.2f}"
            fast = results["std tools, openssl"]
            ratios += f" (openssl: wall {r.wall / fast.wall:.2f}, CPU {r.cpu / fast.cpu:.2f})"
            ratios += f"; peak RSS {r.rss_mib:.0f} MiB"
        print(
            f"  {name:20} wall median {r.wall:6.2f} s (best {r.best:.2f}, "
            f"{size / r.wall / 1e6:4.0f} MB/s), CPU {r.cpu:6.2f} s{ratios}"
        )
    seal = results["handover"]
    limit_wall = limit_cpu / cores
    print(
        f"  hardware limit on {cores} core(s): {limit_wall:.2f} s; handover wall"
        f" {seal.wall / limit_wall:.2f}x it (best {seal.best / limit_wall:.2f}x), CPU"
        f" {seal.cpu / limit_cpu:.2f}x the {limit_cpu:.2f} CPU-s of the crypto alone"
    )
    tar_cpu, fixed = floor
    floor_wall = fixed + (limit_cpu + tar_cpu) / cores
    print(
        f"  floor on {cores} core(s): fixed {fixed:.2f} s + (crypto {limit_cpu:.2f} + tar"
        f" {tar_cpu:.2f} CPU-s) / {cores} = {floor_wall:.2f} s, {floor_wall / anchor.wall:.2f}x"
        f" the anchor; handover wall {seal.wall / floor_wall:.2f}x the floor"
    )


def scaling(all_results: dict[str, dict[str, Runs]], largest: int, sha: float) -> None:
    """From one core to two: speed-up of each command, and what more cores would give.

    The projection: volumes of a contract of several datasets are independent,
    so their CPU spreads over the free cores, down to a floor: the longest
    stage of the largest volume, SHA-256 of its plaintext on one thread. The
    anchor gains nothing from more cores: age encrypts on one.
    """
    if len(all_results) < 2:
        return
    (one_cpus, one), (two_cpus, two) = list(all_results.items())[:2]
    print(f"scaling {one_cpus} -> {two_cpus}:")
    for name in one:
        print(
            f"  {name:20} speed-up {one[name].wall / two[name].wall:.2f}x"
            f" (CPU {one[name].cpu:.2f} -> {two[name].cpu:.2f} s)"
        )
    multi_cpu = two["handover, N volumes"].cpu
    floor = largest / GIB * sha
    anchor = two["anchor"].wall
    for cores in (4, 8):
        projected = max(multi_cpu / cores, floor)
        print(
            f"  projection, {cores} free cores, one volume per dataset: about {projected:.2f} s"
            f" (CPU {multi_cpu:.2f} s / {cores}, floor {floor:.2f} s), anchor about"
            f" {anchor:.2f} s: ratio about {projected / anchor:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--large-files", type=int, default=2)
    parser.add_argument("--large-mib", type=int, default=256)
    parser.add_argument("--small-files", type=int, default=10_000)
    parser.add_argument("--cpus", nargs="+", default=["0", "0,1"], help="taskset CPU lists")
    parser.add_argument("--verify", action="store_true", help="also time verify vs age -d")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    compile_checkout()  # timed as an installed handover runs: see _bytecode.py
    for tool in ("tar", "age", "age-keygen", "taskset", "sha256sum", "tee"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: apt-get install -y tar age util-linux coreutils")

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="handover-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    tree = workdir / "tree"
    started = time.perf_counter()
    files, size = build_tree(tree, args.large_files, args.large_mib, args.small_files)
    print(
        f"work folder {workdir}; tree: {files} files, {size / 2**20:.0f} MiB ({args.large_files}"
        f" x {args.large_mib} MiB + {args.small_files} small files), built in"
        f" {time.perf_counter() - started:.1f} s"
    )
    identity = workdir / "key.txt"
    identity.unlink(missing_ok=True)
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    recipient = subprocess.run(
        ["age-keygen", "-y", str(identity)], check=True, capture_output=True, text=True
    ).stdout.strip()
    sign_key = workdir / "signing"
    for stale in (sign_key, Path(f"{sign_key}.pub")):
        stale.unlink(missing_ok=True)
    subprocess.run(
        [*HANDOVER, "keygen", "--signing", "--out", str(sign_key)], check=True, capture_output=True
    )
    datasets = [*sorted((tree / "large").iterdir()), tree / "small"]
    for fifo in ("plain.fifo", "cipher.fifo"):
        (workdir / fifo).unlink(missing_ok=True)
        os.mkfifo(workdir / fifo)
    setup = Setup(workdir, tree, recipient, sign_key, datasets)

    sha, chacha = primitive_costs()
    limit_cpu = size / GIB * (2 * sha + chacha)
    print(
        f"primitives (CPU-s per GiB, one thread): SHA-256 {sha:.3f} ({1 / sha:.2f} GiB/s,"
        f" sha_ni in /proc/cpuinfo: {sha_ni()}), ChaCha20-Poly1305 64 KiB chunks {chacha:.3f}"
        f" ({1 / chacha:.2f} GiB/s); sha256(plain) + chacha + sha256(cipher) ="
        f" {2 * sha + chacha:.3f} CPU-s/GiB, {limit_cpu:.2f} CPU-s for this tree"
    )
    floor = floor_costs(setup)
    print(f"floor costs: tar {floor[0]:.2f} CPU-s for the tree, a one-file seal {floor[1]:.2f} s")
    all_results: dict[str, dict[str, Runs]] = {}
    for cpus in args.cpus:
        all_results[cpus] = run_set(setup, cpus, args.runs)
    for cpus, results in all_results.items():
        report(cpus, results, size, limit_cpu, floor)
    scaling(all_results, max(_tree_bytes(d) for d in datasets), sha)
    if args.verify:
        verify(setup, identity, size, args.runs)
    if not args.keep and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


def verify(setup: Setup, identity: Path, size: int, runs: int) -> None:
    """`handover verify --identity` against `age -d | tar -t` plus `sha256sum` of every file."""
    work = setup.workdir
    clear_outputs(work)
    timed(commands(setup, "0,1")["anchor"], shell=True)  # an age file to decrypt
    timed(commands(setup, "0,1")["handover"], shell=False)  # a bundle to verify
    os.sync()
    anchor_cmd = (
        f"set -o pipefail; age -d -i {identity} {work}/a.age | tar -t > /dev/null && "
        f"cd {setup.tree} && find . -type f -print0 | xargs -0 sha256sum > /dev/null"
    )
    ours_cmd = [*HANDOVER, "verify", str(work / "bundle"), "--identity", str(identity)]
    anchor, ours = Runs(), Runs()
    for _ in range(runs):
        anchor.samples.append(timed(anchor_cmd, shell=True))
        ours.samples.append(timed(ours_cmd))
    print(
        f"verify: anchor median {anchor.wall:.2f} s, handover {ours.wall:.2f} s"
        f" ({size / ours.wall / 1e6:.0f} MB/s), ratio {ours.wall / anchor.wall:.2f};"
        f" CPU ratio {ours.cpu / anchor.cpu:.2f}; peak RSS {ours.rss_mib:.0f} MiB"
    )


if __name__ == "__main__":
    main()
