"""Peak memory and throughput of `handover verify` / `handover open` on large bundles (#16).

Two bundles, each built quickly under --workdir:

    index:  one volume of --files empty files (default 1,000,000) in folders
            of 1,000: a MANIFEST.json of hundreds of MB, a volume SHA256SUMS
            of a million lines, a member policy table past its memory limit;
    volume: one volume holding one file of --gib GiB (default 2; 0 skips it).

For each, `handover verify --identity` and `handover open` run as
subprocesses (what a user runs); the peak RSS of each comes from wait4's
rusage, so it is the command's own, not this script's. The anchor is what a
client runs with standard tools, `age -d -i KEY VOLUME | tar -t >/dev/null`;
the ratio is handover's wall time over the anchor's.

    .venv/bin/python benchmarks/verify_memory.py [--workdir DIR] [--files N] [--gib G]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from _bytecode import compile_checkout

HANDOVER = [sys.executable, "-c", "from handover.cli import main; main()"]
LIMIT_MIB = 150


class FileTarSource:
    """A VolumeSource reading a tar stream already written to a file (no producer to wait for)."""

    def __init__(self, label: str, path: Path) -> None:
        self._label = label
        self._path = path

    @property
    def label(self) -> str:
        return self._label

    @property
    def origin(self) -> str:
        return f"local:{self._path}"

    @contextlib.contextmanager
    def open_tar(self) -> Iterator[BinaryIO]:
        with open(self._path, "rb") as handle:
            yield handle

    def member_extras(self) -> dict[str, dict[str, str]]:
        return {}


def empty_files_tar(path: Path, files: int, per_folder: int = 1000) -> None:
    """A ustar stream of `files` empty files, `per_folder` to a folder, written fast."""
    template = tarfile.TarInfo("x").tobuf(tarfile.USTAR_FORMAT)
    with open(path, "wb", buffering=1 << 20) as out:
        for i in range(files):
            name = f"data/d{i // per_folder:05d}/file-{i:08d}.txt".encode()
            header = bytearray(template)
            header[0:100] = name.ljust(100, b"\0")
            header[148:156] = b"        "
            header[148:155] = b"%06o\0" % sum(header)
            out.write(header)
        out.write(bytes(1024))  # end-of-archive
        out.write(bytes(-(files * 512 + 1024) % 10240))


def big_file_tar(path: Path, gib: int) -> None:
    """A tar stream of one `gib` GiB file of distinct 4 MiB blocks (no file on disk first)."""
    size = gib << 30
    info = tarfile.TarInfo("data/disk.img")
    info.size = size
    block = bytearray(os.urandom(4 << 20))
    with open(path, "wb", buffering=0) as out:
        out.write(info.tobuf(tarfile.PAX_FORMAT))
        for i in range(size // len(block)):
            block[:8] = i.to_bytes(8, "big")
            out.write(block)
        out.write(bytes(2048 + -(out.tell()) % 10240))


def seal(tar: Path, bundle: Path, workdir: Path) -> Path:
    """Seal `tar` as the one volume of `bundle`; return the age identity file."""
    from handover.bundle.age import X25519Identity
    from handover.bundle.local import DirectoryTarget
    from handover.bundle.sshsig import SigningKey
    from handover.bundle.writer import BundleWriter

    identity = X25519Identity.generate()
    key_file = workdir / "client.key"
    key_file.write_text(f"{identity}\n")
    bundle.mkdir(parents=True)
    writer = BundleWriter(DirectoryTarget(bundle), [identity.recipient()], SigningKey.generate())
    writer.add_volume(FileTarSource("data", tar), number=1)
    writer.finish()
    return key_file


# A small process between this one and the command: on Linux a child's peak RSS starts at
# its parent's (exec keeps the old high-water mark), and this process has just sealed.
_PEAK = (
    "import os, subprocess, sys; p = subprocess.Popen(sys.argv[1:]); _, s, u = os.wait4(p.pid, 0); "
    "sys.stderr.write(f'peak-rss-kib {u.ru_maxrss} {u.ru_utime + u.ru_stime}\\n'); "
    "sys.exit(os.waitstatus_to_exitcode(s))"
)


def measured(command: list[str]) -> tuple[int, float, float, float]:
    """Run `command`; return (exit code, wall s, peak RSS in MiB, CPU s) of that process."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    elapsed = time.monotonic() - started
    *lines, last = done.stderr.rstrip("\n").split("\n")
    if done.returncode:
        sys.stderr.write("\n".join(lines) + "\n")
    _, rss, cpu = last.split()
    return done.returncode, elapsed, int(rss) / 1024, float(cpu)


def anchor(key_file: Path, bundle: Path) -> float:
    """Wall time of `age -d -i KEY VOLUME | tar -t >/dev/null`."""
    volume = next((bundle / "volumes").iterdir())
    started = time.monotonic()
    subprocess.run(
        f"age -d -i {key_file} {volume} | tar -t >/dev/null",
        shell=True,
        check=True,
    )
    return time.monotonic() - started


def run_case(name: str, tar: Path, workdir: Path) -> bool:
    slug = name.split()[0]
    bundle = workdir / f"{slug}-bundle"
    started = time.monotonic()
    key_file = seal(tar, bundle, workdir)
    tar.unlink()
    print(f"{name}: sealed in {time.monotonic() - started:.1f} s", flush=True)
    base = anchor(key_file, bundle) if shutil.which("age") else float("nan")
    ok = True
    into = workdir / f"{slug}-opened"
    for label, command in [
        ("verify", [*HANDOVER, "verify", str(bundle), "--identity", str(key_file)]),
        (
            "open",
            [*HANDOVER, "open", str(bundle), "--identity", str(key_file), "--into", str(into)],
        ),
    ]:
        code, elapsed, rss, cpu = measured(command)
        ok = ok and code == 0 and rss <= LIMIT_MIB
        print(
            f"{name}: {label}: exit {code}, {elapsed:.1f} s, CPU {cpu:.1f} s "
            f"({elapsed / base:.1f}x the "
            f"age | tar -t anchor of {base:.1f} s), peak RSS {rss:.0f} MiB "
            f"({'within' if rss <= LIMIT_MIB else 'OVER'} {LIMIT_MIB} MiB)",
            flush=True,
        )
    shutil.rmtree(into, ignore_errors=True)
    shutil.rmtree(bundle, ignore_errors=True)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--gib", type=int, default=2)
    args = parser.parse_args()
    compile_checkout()  # timed as an installed handover runs: see _bytecode.py
    workdir = Path(tempfile.mkdtemp(prefix="verify-memory-", dir=args.workdir))
    try:
        ok = True
        if args.files:
            tar = workdir / "index.tar"
            empty_files_tar(tar, args.files)
            ok = run_case(f"index ({args.files} files)", tar, workdir) and ok
        if args.gib:
            tar = workdir / "volume.tar"
            big_file_tar(tar, args.gib)
            ok = run_case(f"volume ({args.gib} GiB)", tar, workdir) and ok
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
