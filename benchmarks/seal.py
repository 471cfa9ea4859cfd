"""Benchmark `handover seal` / `handover verify --identity` against the shell-tool anchors.

Builds a tree of about 1 GiB (a few large files and 20,000 small ones) under
--workdir, then alternates N times:

    seal:    tar -cf - TREE | age -r RECIPIENT > out.age
             handover seal TREE --to RECIPIENT --sign-key KEY --out DIR
    verify:  age -d -i KEY out.age | tar -t >/dev/null; sha256sum of every file of TREE
             handover verify DIR --identity KEY

and prints the median wall time of each, the ratio handover/anchor, and the
peak RSS of the handover process (from wait4's rusage). The handover command
runs as a subprocess: the measure is what a user runs.

    .venv/bin/python benchmarks/seal.py [--workdir DIR] [--runs 3] [--large-mib 256]
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
from pathlib import Path

HANDOVER = [sys.executable, "-c", "import sys; from handover.cli import main; main()"]


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


def timed(command: list[str] | str, *, shell: bool = False) -> tuple[float, int, float]:
    """Run a command; return (wall seconds, peak RSS KiB of the child, CPU seconds).

    CPU seconds (user + system, the child and the processes it waited for: tar,
    age) say what the work costs when other jobs share the machine.
    """
    started = time.perf_counter()
    process = subprocess.Popen(
        command, shell=shell, stdout=subprocess.DEVNULL, executable="/bin/bash" if shell else None
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"command failed ({process.returncode}): {command}")
    return elapsed, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--large-files", type=int, default=4)
    parser.add_argument("--large-mib", type=int, default=224)
    parser.add_argument("--small-files", type=int, default=20_000)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="handover-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    tree = workdir / "tree"
    print(f"work folder: {workdir}")
    started = time.perf_counter()
    files, size = build_tree(tree, args.large_files, args.large_mib, args.small_files)
    print(
        f"tree: {files} files, {size / 2**20:.0f} MiB ({args.large_files} x {args.large_mib} MiB"
        f" + {args.small_files} small files), built in {time.perf_counter() - started:.1f} s"
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
    anchor_out = workdir / "anchor.tar.age"
    bundle = workdir / "bundle"

    anchor_seal = f"tar -cf - -C {workdir} tree | age -r {recipient} > {anchor_out}"
    anchor_verify = (
        f"set -o pipefail; age -d -i {identity} {anchor_out} | tar -t > /dev/null && "
        f"cd {tree} && find . -type f -print0 | xargs -0 sha256sum > /dev/null"
    )
    seal_command = [*HANDOVER, "seal", str(tree), "--to", recipient, "--sign-key",
                    str(sign_key), "--out", str(bundle)]  # fmt: skip
    verify_command = [*HANDOVER, "verify", str(bundle), "--identity", str(identity)]
    # name -> (anchor runs, handover runs), each run (wall s, peak RSS KiB, CPU s)
    results: dict[str, tuple[list[tuple[float, int, float]], list[tuple[float, int, float]]]] = {
        "seal": ([], []),
        "verify": ([], []),
    }
    for run in range(1, args.runs + 1):
        anchor_out.unlink(missing_ok=True)
        results["seal"][0].append(timed(anchor_seal, shell=True))
        shutil.rmtree(bundle, ignore_errors=True)
        results["seal"][1].append(timed(seal_command))
        results["verify"][0].append(timed(anchor_verify, shell=True))
        results["verify"][1].append(timed(verify_command))
        print(
            f"run {run}: "
            + "; ".join(
                f"{name} anchor {runs[0][-1][0]:.2f} s, handover {runs[1][-1][0]:.2f} s"
                for name, runs in results.items()
            ),
            flush=True,
        )

    for name, (anchor, ours) in results.items():
        a = statistics.median(r[0] for r in anchor)
        h = statistics.median(r[0] for r in ours)
        a_cpu = statistics.median(r[2] for r in anchor)
        h_cpu = statistics.median(r[2] for r in ours)
        rss = max(r[1] for r in ours)
        print(
            f"{name:6}: anchor median {a:.2f} s ({size / a / 1e6:.0f} MB/s), handover median"
            f" {h:.2f} s ({size / h / 1e6:.0f} MB/s), ratio {h / a:.2f}; CPU anchor"
            f" {a_cpu:.2f} s, handover {h_cpu:.2f} s (ratio {h_cpu / a_cpu:.2f});"
            f" handover peak RSS {rss / 1024:.0f} MiB"
        )
    if not args.keep and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
