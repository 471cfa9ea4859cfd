"""Pull-and-seal from an SFTP-only account: handover against OpenSSH's `sftp` + tar + age.

An account under `ForceCommand internal-sftp` cannot run `tar`, so the
standard tools have to copy the tree first. Starts such an sshd on loopback
(the test fixture's code, used as a library), builds a tree (large files
plus many small ones, as `ssh_pull.py`), then alternates ROUNDS times:

    anchor:   sftp -q -r -P PORT -i KEY USER@127.0.0.1:TREE COPY
              && tar -cf - -C COPY . | age -r RECIPIENT > out
    handover: handover seal ssh://USER@127.0.0.1:PORT/TREE --known-hosts F
                  --ssh-key K --to RECIPIENT --sign-key S --out DIR

for the whole tree, then for the large files and the small files apart, and
prints the medians, the ratio to the anchor in wall time, the CPU
seconds of each (its children included: sftp, tar, age) and handover's
peak RSS. handover finds
the account has no shell and builds the tar from pipelined SFTP reads
(`handover/connectors/ssh/sftp_read.py`).

    .venv/bin/python benchmarks/sftp_pull.py [--rounds 3] [--large-mib 512] [--small 5000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _bytecode import compile_checkout
from _timing import run_timed as timed
from ssh_pull import build_tree, ssh_options

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from handover.bundle.age import X25519Identity  # noqa: E402
from handover.bundle.sshsig import SigningKey  # noqa: E402
from tests.fixtures.sshd import SFTP_USER, SshdFactory, SshdHost  # noqa: E402

HANDOVER = str(ROOT / ".venv" / "bin" / "handover")


def anchor(
    host: SshdHost, known: Path, tree: Path, recipient: str, work: Path
) -> tuple[float, float, int]:
    copy = work / "copy"
    sftp = " ".join(["sftp", "-q", "-r", "-P", str(host.port), *ssh_options(host, known)])
    command = (
        f"set -o pipefail; {sftp} {host.user}@127.0.0.1:{tree} {copy} && "
        f"tar -cf - -C {copy} . | age -r {recipient} > {work / 'anchor.age'}"
    )
    result = timed(command, shell=True)
    shutil.rmtree(copy)
    (work / "anchor.age").unlink()
    return result


def handover(
    host: SshdHost, known: Path, tree: Path, recipient: str, sign_key: Path, work: Path
) -> tuple[float, float, int]:
    out = work / "bundle"
    argv = [
        HANDOVER,
        "seal",
        f"ssh://{host.user}@127.0.0.1:{host.port}{tree}",
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
        "--jobs",
        "1",
    ]
    result = timed(argv)
    shutil.rmtree(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--large-mib", type=int, default=512)
    parser.add_argument("--small", type=int, default=5_000)
    args = parser.parse_args()
    compile_checkout()
    for tool in ("sftp", "age", "tar"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: apt-get install -y openssh-client age tar")
    work = Path(tempfile.mkdtemp(prefix="handover-bench-"))
    work.chmod(0o711)  # the SFTP account reads its authorized_keys and the tree below
    try:
        with SshdFactory(work / "sshd") as factory:
            host = factory.start("bench-sftp", user=SFTP_USER, sftp_only=True)
            known = host.write_known_hosts(work / "known_hosts")
            recipient = str(X25519Identity.generate().recipient())
            sign_key = work / "provider-signing"
            sign_key.write_bytes(SigningKey.generate().private_openssh())
            sign_key.chmod(0o600)
            tree = host.data_root / "tree"
            total, small = build_tree(tree, args.large_mib, args.small)
            subprocess.run(["chown", "-R", f"{host.user}:", str(tree)], check=True)
            print(
                f"tree: {total / 1e6:.0f} MB, {small} small files; SFTP-only sshd, port {host.port}"
            )
            for label, path in (
                ("whole tree", tree),
                ("large", tree / "large"),
                ("small", tree / "small"),
            ):
                runs: dict[str, list[tuple[float, float, int]]] = {"anchor": [], "handover": []}
                for round_ in range(args.rounds):
                    order = ("anchor", "handover") if round_ % 2 == 0 else ("handover", "anchor")
                    for kind in order:
                        if kind == "anchor":
                            runs[kind].append(anchor(host, known, path, recipient, work))
                        else:
                            runs[kind].append(
                                handover(host, known, path, recipient, sign_key, work)
                            )
                wall = {k: statistics.median(r[0] for r in v) for k, v in runs.items()}
                cpu = {k: statistics.median(r[1] for r in v) for k, v in runs.items()}
                rss = max(r[2] for r in runs["handover"]) / 1024
                print(
                    f"{label}: anchor {wall['anchor']:.2f} s ({cpu['anchor']:.2f} CPU-s), "
                    f"handover {wall['handover']:.2f} s ({cpu['handover']:.2f} CPU-s): "
                    f"ratio {wall['handover'] / wall['anchor']:.2f}; peak RSS {rss:.0f} MiB",
                    flush=True,
                )
            print(f"load average {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
