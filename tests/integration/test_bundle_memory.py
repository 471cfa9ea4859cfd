"""`handover verify` and `handover open` in bounded memory (#16): a bundle with a large index.

120,000 empty files make a MANIFEST.json of about 30 MB, a volume
SHA256SUMS of 120,000 lines, and a member policy table past its in-memory
limit (so it moves to disk): each command, run as a user runs it, must
stay under 150 MiB of peak RSS. The 2 GiB volume case extends the 2 GiB
round trip of test_bundle_tools.py; benchmarks/verify_memory.py runs both
at a million files.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from tests.fixtures.peak_rss import run_measured

pytestmark = pytest.mark.integration

LIMIT_MIB = 150
FILES = 120_000
PER_FOLDER = 1000
CORE = [sys.executable, "-c", "from handover.cli import main; main()"]
ROOT = Path(__file__).resolve().parents[2]


class FileTarSource:
    """A VolumeSource reading a tar stream already written to a file."""

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


def empty_files_tar(path: Path, files: int) -> None:
    """A ustar stream of `files` empty files, PER_FOLDER to a folder (no tree on disk)."""
    template = tarfile.TarInfo("x").tobuf(tarfile.USTAR_FORMAT)
    with open(path, "wb", buffering=1 << 20) as out:
        for i in range(files):
            header = bytearray(template)
            name = f"data/d{i // PER_FOLDER:05d}/file-{i:08d}.txt".encode()
            header[0:100] = name.ljust(100, b"\0")
            header[148:156] = b"        "
            header[148:155] = b"%06o\0" % sum(header)
            out.write(header)
        out.write(bytes(1024))
        out.write(bytes(-(files * 512 + 1024) % 10240))


def seal_empty_files(folder: str, files: str) -> None:
    """Seal a bundle of `files` empty files under `folder` (run in a child: it holds the rows)."""
    from handover.bundle.age import X25519Identity
    from handover.bundle.local import DirectoryTarget
    from handover.bundle.sshsig import SigningKey
    from handover.bundle.writer import BundleWriter

    work = Path(folder)
    identity = X25519Identity.generate()
    (work / "client.key").write_text(f"{identity}\n")
    empty_files_tar(work / "data.tar", int(files))
    (work / "bundle").mkdir()
    writer = BundleWriter(
        DirectoryTarget(work / "bundle"), [identity.recipient()], SigningKey.generate()
    )
    writer.add_volume(FileTarSource("data", work / "data.tar"), number=1)
    writer.finish()
    (work / "data.tar").unlink()


@pytest.fixture(scope="module")
def large_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("large-index")
    code = (
        "import sys; from tests.integration.test_bundle_memory import seal_empty_files; "
        "seal_empty_files(*sys.argv[1:])"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(work), str(FILES)], check=True, cwd=ROOT, timeout=900
    )
    return work


def test_verify_a_large_index_in_bounded_memory(large_index: Path) -> None:
    bundle, key = large_index / "bundle", large_index / "client.key"
    done, peak = run_measured([*CORE, "verify", bundle, "--identity", key])
    assert done.returncode == 0, done.stderr
    assert "every volume decrypted and every member checked" in done.stdout
    assert peak <= LIMIT_MIB, f"handover verify peaked at {peak:.0f} MiB"


def test_open_a_large_index_in_bounded_memory(large_index: Path) -> None:
    bundle, key = large_index / "bundle", large_index / "client.key"
    into = large_index / "opened"
    done, peak = run_measured([*CORE, "open", bundle, "-i", key, "--into", into])
    assert done.returncode == 0, done.stderr
    assert f"Opened 1 volume(s), {FILES} files verified" in done.stdout
    assert peak <= LIMIT_MIB, f"handover open peaked at {peak:.0f} MiB"
    last = into / "0001-data" / "data" / f"d{(FILES - 1) // PER_FOLDER:05d}"
    assert (last / f"file-{FILES - 1:08d}.txt").stat().st_size == 0
    with open(into / "0001-data" / "SHA256SUMS", "rb") as sums:
        assert sum(1 for _ in sums) == FILES
    assert len(os.listdir(last)) == PER_FOLDER


def test_a_tampered_large_volume_is_still_refused_in_bounded_memory(
    large_index: Path, tmp_path: Path
) -> None:
    """The digests that replace the member lists still catch one altered byte of a volume."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for entry in (large_index / "bundle").rglob("*"):
        target = bundle / entry.relative_to(large_index / "bundle")
        if entry.is_dir():
            target.mkdir(exist_ok=True)
        else:
            os.link(entry, target)
    volume = next((bundle / "volumes").iterdir())
    data = bytearray(volume.read_bytes())
    data[len(data) // 16] ^= 1
    volume.unlink()  # a hard link: the original bundle stays intact
    volume.write_bytes(data)
    done, peak = run_measured([*CORE, "verify", bundle, "--identity", large_index / "client.key"])
    assert done.returncode == 1
    assert "0001-data.tar.age: SHA-256 does not match SHA256SUMS" in done.stderr
    assert peak <= LIMIT_MIB
