"""Pull-and-seal over SSH: handover against the OpenSSH + age pipeline, in the same run.

Starts an sshd on loopback (the test fixture's code, used as a library),
builds a tree (large files plus many small ones), then alternates ROUNDS
times:

    anchor:   ssh -p PORT -i KEY USER@127.0.0.1 tar -cf - TREE | age -r RECIPIENT > out
              (OpenSSH's default cipher, chacha20-poly1305 here)
    anchor-gcm: the same with `-c aes128-gcm@openssh.com`, the cipher handover's
              bulk `ssh` negotiates first: the ratio to it is the honest one
    openssh:  HANDOVER_SSH_BULK=openssh handover seal ssh://USER@127.0.0.1:PORT/TREE
                  --known-hosts F --ssh-key K --to RECIPIENT --sign-key S --out DIR
    paramiko: the same with HANDOVER_SSH_BULK=paramiko

and prints the medians, each carrier's ratio to the anchor in wall time and
in CPU seconds of the child (its own children included: `ssh`, `age`), and
handover's peak RSS (ru_maxrss of the child). CPU seconds stay meaningful
when other work shares the machine; wall times do not. The "remote" side
(sshd and tar, on this same machine) is counted apart, from the CPU the sshd
daemon reaped from its connection processes: on loopback both sides share
the two cores, so (local + remote CPU-s) / cores is the least wall time any
run can take, for the anchor as for handover. Then the small files
alone: `scp -r` against handover seal (default carrier), in files per second.
Then start-up (`--startup-rounds`): a pull of one small file, where
handover's fixed cost shows, against the anchor; an `ssh` wrapper first on
PATH logs when handover starts `ssh`, in ms after handover's own start.

    .venv/bin/python benchmarks/ssh_pull.py [--rounds 3] [--large-mib 1000] [--small 20000]

Goals: ratio <= 1.15 with the OpenSSH carrier (issue 16; 1.25 for paramiko, issue 4),
small files >= 3x scp, peak RSS < 150 MB.
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

from _bytecode import compile_checkout
from _timing import run_timed

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from handover.bundle.age import X25519Identity  # noqa: E402
from handover.bundle.sshsig import SigningKey  # noqa: E402
from tests.fixtures.sshd import SshdFactory, SshdHost  # noqa: E402

HANDOVER = str(ROOT / ".venv" / "bin" / "handover")


def build_tree(root: Path, large_mib: int, small: int) -> tuple[int, int]:
    """Four large files of random data and `small` files of 1-8 KiB in 100 folders."""
    root.mkdir(parents=True)
    block = os.urandom(1 << 20)
    large = root / "large"
    large.mkdir()
    per_file = max(1, large_mib // 4)
    for index in range(4):
        with open(large / f"blob-{index}.bin", "wb") as handle:
            for step in range(per_file):
                handle.write(step.to_bytes(8, "big") + block[8:])
    total = 4 * per_file << 20
    folders = 100
    for index in range(small):
        folder = root / "small" / f"d{index % folders:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        size = 1024 + (index * 7919) % 7168
        start = (index * 104729) % ((1 << 20) - size)
        (folder / f"f{index:06d}.txt").write_bytes(block[start : start + size])
        total += size
    return total, small


def ssh_options(host: SshdHost, known_hosts: Path) -> list[str]:
    return [
        "-i",
        str(host.key_path),
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
    ]


CARRIERS = ("openssh", "paramiko")
ANCHORS = ("anchor", "anchor-gcm")
GCM = "aes128-gcm@openssh.com"
CPU: dict[str, list[float]] = {kind: [] for kind in (*ANCHORS, *CARRIERS)}
REMOTE_CPU: dict[str, list[float]] = {kind: [] for kind in (*ANCHORS, *CARRIERS)}
SSHD_PID = 0  # the sshd daemon, whose reaped children are the remote side's CPU


def reaped_cpu(pid: int) -> float:
    """CPU seconds of the waited-for children of `pid` (cutime + cstime in /proc/PID/stat)."""
    if not pid:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def timed(
    argv: list[str] | str,
    *,
    shell: bool = False,
    kind: str = "",
    env: dict[str, str] | None = None,
) -> tuple[float, int]:
    """Wall time of a child and its peak RSS in KiB (ru_maxrss of the waited child).

    Also records the child's CPU seconds (user + system, its own waited children
    included: ssh and age for the anchor pipeline), a figure that stays
    meaningful when other work shares the machine.
    """
    remote0 = reaped_cpu(SSHD_PID)
    elapsed, cpu, rss = run_timed(argv, shell=shell, env=env)
    if kind:
        CPU[kind].append(cpu)
        time.sleep(0.2)  # the daemon reaps its connection process just after the end
        REMOTE_CPU[kind].append(reaped_cpu(SSHD_PID) - remote0)
    return elapsed, rss


def anchor(
    host: SshdHost, known: Path, tree: Path, recipient: str, out: Path, kind: str = "anchor"
) -> float:
    cipher = ["-c", GCM] if kind == "anchor-gcm" else []
    ssh = " ".join(["ssh", "-p", str(host.port), *cipher, *ssh_options(host, known)])
    command = (
        f"set -o pipefail; {ssh} root@127.0.0.1 tar -cf - -C / {str(tree).lstrip('/')} "
        f"| age -r {recipient} > {out}"
    )
    elapsed, _ = timed(command, shell=True, kind=kind)
    out.unlink()
    return elapsed


def seal_argv(
    host: SshdHost, known: Path, tree: Path, recipient: str, sign_key: Path, out: Path
) -> list[str]:
    """`handover seal ssh://...` of `tree` on `host`, trusting `known`, into `out`."""
    return [
        HANDOVER,
        "seal",
        f"ssh://root@127.0.0.1:{host.port}{tree}",
        "--known-hosts",
        str(known),
        "--ssh-key",
        str(host.key_path),
        "--to",
        recipient,
        "--sign-key",
        str(sign_key),
        "--out",
        str(out),
    ]


def handover_seal(
    host: SshdHost,
    known: Path,
    tree: Path,
    recipient: str,
    sign_key: Path,
    out: Path,
    kind: str = "",
) -> tuple[float, int]:
    """`handover seal` of `tree`; `kind` (a carrier) sets HANDOVER_SSH_BULK and records CPU."""
    argv = [*seal_argv(host, known, tree, recipient, sign_key, out), "--jobs", "1"]
    env = {"HANDOVER_SSH_BULK": kind} if kind else None
    result = timed(argv, kind=kind, env=env)
    shutil.rmtree(out)
    return result


def scp(host: SshdHost, known: Path, tree: Path, out: Path) -> float:
    argv = ["scp", "-q", "-r", "-P", str(host.port), *ssh_options(host, known)]
    elapsed, _ = timed([*argv, f"root@127.0.0.1:{tree}", str(out)])
    shutil.rmtree(out)
    return elapsed


def startup(
    host: SshdHost, known: Path, recipient: str, sign_key: Path, work: Path, rounds: int
) -> None:
    """A pull of one 64 KiB file: ms until handover starts `ssh`, whole seal, anchor."""
    tree = host.data_root / "startup"
    tree.mkdir()
    (tree / "one.bin").write_bytes(os.urandom(64 << 10))
    wrapper = work / "wrapper"
    wrapper.mkdir()
    log = work / "ssh-started"
    real = shutil.which("ssh")
    (wrapper / "ssh").write_text(f'#!/bin/sh\ndate +%s.%N >> {log}\nexec {real} "$@"\n')
    (wrapper / "ssh").chmod(0o755)
    path = f"{wrapper}{os.pathsep}{os.environ.get('PATH', os.defpath)}"
    spawn: list[float] = []
    seals: list[float] = []
    anchors: list[float] = []
    for _ in range(rounds):
        log.unlink(missing_ok=True)
        started = time.time()
        elapsed, _ = timed(
            seal_argv(host, known, tree, recipient, sign_key, work / "b3"),
            env={"PATH": path, "HANDOVER_SSH_BULK": "openssh"},
        )
        shutil.rmtree(work / "b3")
        spawn.append((float(log.read_text().split()[0]) - started) * 1000)
        seals.append(elapsed * 1000)
        anchors.append(anchor(host, known, tree, recipient, work / "anchor.age") * 1000)
    print(
        f"start-up (one 64 KiB file): handover starts ssh at {statistics.median(spawn):.0f} ms"
        f" (median of {[round(ms) for ms in spawn]}), seal {statistics.median(seals):.0f} ms,"
        f" anchor {statistics.median(anchors):.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--large-mib", type=int, default=1000)
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument(
        "--small-rounds", type=int, default=0, help="default: --rounds; -1: skip the small files"
    )
    parser.add_argument(
        "--carriers", default=",".join(CARRIERS), help="comma-separated: openssh,paramiko"
    )
    parser.add_argument(
        "--startup-rounds", type=int, default=5, help="pulls of one small file; 0: skip"
    )
    args = parser.parse_args()
    compile_checkout()  # timed as an installed handover runs: see _bytecode.py
    carriers = tuple(c for c in args.carriers.split(",") if c)
    for tool in ("ssh", "scp", "age", "tar"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: apt-get install -y openssh-client age tar")

    work = Path(tempfile.mkdtemp(prefix="handover-bench-"))
    try:
        with SshdFactory(work / "sshd") as factory:
            host = factory.start("bench")
            global SSHD_PID
            SSHD_PID = host.process.pid if host.process is not None else 0
            known = host.write_known_hosts(work / "known_hosts")
            identity = X25519Identity.generate()
            recipient = str(identity.recipient())
            sign_key = work / "provider-signing"
            sign_key.write_bytes(SigningKey.generate().private_openssh())
            sign_key.chmod(0o600)
            tree = host.data_root / "tree"
            total, small = build_tree(tree, args.large_mib, args.small)
            print(f"tree: {total / 1e6:.0f} MB, {small} small files; sshd on port {host.port}")
            subprocess.run(["sync"], check=False)

            anchors: dict[str, list[float]] = {a: [] for a in ANCHORS}
            walls: dict[str, list[float]] = {c: [] for c in carriers}
            rss: list[int] = []
            for round_ in range(args.rounds):
                line = f"round {round_ + 1}:"
                # Alternate the order, so no run always follows the same other one.
                order = (*ANCHORS, *carriers)
                if round_ % 2:
                    order = tuple(reversed(order))
                for kind in order:
                    if kind in ANCHORS:
                        elapsed = anchor(host, known, tree, recipient, work / "anchor.age", kind)
                        anchors[kind].append(elapsed)
                    else:
                        elapsed, peak = handover_seal(
                            host, known, tree, recipient, sign_key, work / "bundle", kind=kind
                        )
                        walls[kind].append(elapsed)
                        rss.append(peak)
                    line += (
                        f" {kind} {elapsed:.2f} s ({CPU[kind][-1]:.2f}"
                        f" + remote {REMOTE_CPU[kind][-1]:.2f} CPU-s)"
                    )
                print(line, flush=True)
            cores = len(os.sched_getaffinity(0))
            base: dict[str, tuple[float, float]] = {}
            print(f"full tree ({cores} cores; bound = (local + remote CPU-s) / cores):")
            for kind in (*ANCHORS, *carriers):
                runs = anchors[kind] if kind in ANCHORS else walls[kind]
                w = statistics.median(runs)
                c = statistics.median(CPU[kind])
                r = statistics.median(REMOTE_CPU[kind])
                text = (
                    f"  {kind}: median {w:.2f} s ({total / w / 1e6:.0f} MB/s), {c:.2f} CPU-s"
                    f" + remote {r:.2f} CPU-s, bound {(c + r) / cores:.2f} s"
                )
                if kind in ANCHORS:
                    base[kind] = (w, c)
                else:
                    goal = "1.15" if kind == "openssh" else "1.25"
                    for name, (aw, ac) in base.items():
                        text += (
                            f"\n    vs {name}: wall ratio {w / aw:.2f} (goal <= {goal}),"
                            f" local CPU ratio {c / ac:.2f}"
                        )
                print(text)
            if rss:
                print(f"handover peak RSS {max(rss) / 1024:.0f} MiB (goal < 150 MB)")
            print(f"load average {os.getloadavg()[0]:.1f}")

            if args.startup_rounds > 0:
                startup(host, known, recipient, sign_key, work, args.startup_rounds)
            if args.small_rounds < 0:
                return
            small_tree = tree / "small"
            scps: list[float] = []
            seals: list[float] = []
            for _ in range(args.small_rounds or args.rounds):
                scps.append(scp(host, known, small_tree, work / "scp-out"))
                seals.append(
                    handover_seal(
                        host, known, small_tree, recipient, sign_key, work / "b2", kind=""
                    )[0]
                )
            s, h2 = statistics.median(scps), statistics.median(seals)
            print(
                f"small files: scp -r {small / s:.0f} files/s ({s:.2f} s), handover "
                f"{small / h2:.0f} files/s ({h2:.2f} s), {s / h2:.1f}x scp (goal >= 3x)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
