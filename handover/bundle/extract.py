"""Open a restitution bundle: verified extraction into a folder (`handover open`).

`open_bundle` runs the same outer checks as `verify_bundle`, then extracts
into a staging folder next to the destination with `tarfile`'s `data`
filter, refuses links, device files and paths leaving the destination,
checks every hash as it goes, and moves the result into place only when
everything matched: a failed open leaves the destination as it was.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import IO

from handover.bundle.age import AgeReader, Identity
from handover.bundle.hashing import HashingReader
from handover.bundle.manifest import MANIFEST_NAME, Manifest, VolumeRecord
from handover.bundle.reader import (
    COPY_SIZE,
    as_source,
    check_outer,
    check_volume_listing,
    mismatch_problem,
    read_index,
)
from handover.bundle.readme import volume_folder
from handover.bundle.sums import SUMS_NAME, parse_sums
from handover.bundle.types import BundleSource
from handover.bundle.writer import INDEX_NAME
from handover.errors import BundleCorrupt, UsageError

INDEX_FOLDER = "index"

_REFUSED = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
}


def _safe_member(info: tarfile.TarInfo, dest: Path, where: str) -> tarfile.TarInfo:
    """The member as the `data` filter allows it, or BundleCorrupt naming why it is refused."""
    kind = _REFUSED.get(info.type)
    if kind is not None:
        raise BundleCorrupt(
            f"{where}: member {info.name!r} is {kind}; handover open refuses links and "
            "device files (use age and tar by hand to keep them, see README.txt)"
        )
    if info.name.startswith("/") or PurePosixPath(info.name).is_absolute():
        raise BundleCorrupt(f"{where}: member {info.name!r} has an absolute path: refused")
    if ".." in PurePosixPath(info.name).parts:
        raise BundleCorrupt(f"{where}: member {info.name!r} points outside the folder: refused")
    if not (info.isfile() or info.isdir()):
        raise BundleCorrupt(f"{where}: member {info.name!r} has an unsupported type: refused")
    try:
        filtered = tarfile.data_filter(info, str(dest))
    except tarfile.FilterError as exc:
        raise BundleCorrupt(f"{where}: member {info.name!r} refused: {exc}") from exc
    return filtered


def _extract_volume(
    stream: IO[bytes], dest: Path, where: str
) -> tuple[dict[str, str], bytes | None, set[str]]:
    """Extract a tar stream under `dest`; return {file: sha256}, the SHA256SUMS bytes, dirs."""
    hashes: dict[str, str] = {}
    dirs: set[str] = set()
    sums: bytes | None = None
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=stream, mode="r|", bufsize=COPY_SIZE) as tar:  # type: ignore[call-overload]
            for original in tar:
                info = _safe_member(original, dest, where)
                name = info.name.rstrip("/")
                target = dest.joinpath(*PurePosixPath(name).parts)
                if info.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    dirs.add(name)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.is_dir() or target.is_symlink():
                    raise BundleCorrupt(f"{where}: member {name!r} replaces a folder: refused")
                handle = tar.extractfile(original)
                sha = hashlib.sha256()
                kept = bytearray() if name == SUMS_NAME else None
                with open(target, "wb") as out:
                    if handle is not None:
                        while chunk := handle.read(COPY_SIZE):
                            sha.update(chunk)
                            out.write(chunk)
                            if kept is not None:
                                kept += chunk
                os.chmod(target, (info.mode or 0o644) & 0o755 | 0o600)
                if info.mtime is not None:
                    os.utime(target, (info.mtime, info.mtime))
                if kept is not None:
                    sums = bytes(kept)
                else:
                    hashes[name] = sha.hexdigest()
    except tarfile.TarError as exc:
        raise BundleCorrupt(f"{where}: not a valid tar archive: {exc}") from exc
    return hashes, sums, dirs


def _check_end_padding(stream: IO[bytes], where: str) -> None:
    """Only zeros may follow where tarfile stopped (the rest of the last 10 KiB tar record).

    tarfile stops after the first end-of-archive block, so how much padding
    it left depends on where its reads fell. Reading to the end also makes
    the age reader check the final chunk.
    """
    while chunk := stream.read(COPY_SIZE):
        if chunk.strip(b"\0"):
            raise BundleCorrupt(f"{where}: data after the end of the tar archive")


def _open_volume(
    source: BundleSource,
    volume: VolumeRecord,
    identities: Sequence[Identity],
    expected: str,
    dest: Path,
) -> None:
    where = volume.file
    with source.open_read(where) as raw:
        hashing = HashingReader(raw)
        with AgeReader(hashing, identities, name=where) as age:  # type: ignore[arg-type]
            hashes, sums, _dirs = _extract_volume(age, dest, where)  # type: ignore[arg-type]
            _check_end_padding(age, where)  # type: ignore[arg-type]
        hashing.drain()
    if hashing.hexdigest() != expected:
        raise BundleCorrupt(mismatch_problem(where))
    if sums is None:
        raise BundleCorrupt(f"{where}: the volume has no {SUMS_NAME} member")
    if parse_sums(sums, f"{where}: {SUMS_NAME}") != hashes:
        raise BundleCorrupt(f"{where}: files do not match the volume's {SUMS_NAME}")
    recorded = {m.path: m.sha256 for m in volume.members if m.type == "file"}
    if recorded != hashes:
        missing = sorted(set(recorded) - set(hashes))
        differ = sorted(p for p in hashes if recorded.get(p) != hashes[p])
        detail = f"missing {missing[:3]}" if missing else f"differ {differ[:3]}"
        raise BundleCorrupt(f"{where}: files do not match {MANIFEST_NAME} ({detail})")


def open_bundle(
    source: BundleSource | Path | str,
    identities: Sequence[Identity],
    into: Path,
    signer: str | Path | None = None,
) -> Manifest:
    """Verify and extract a bundle into `into` (absent or empty); return its manifest.

    Each volume lands in `into/<NNNN-label>/`, the index in `into/index/`.
    Raises BundleCorrupt (one line per problem) or NoMatchingIdentity; then
    `into` is left as it was. Raises UsageError when `into` is not empty.
    """
    bundle = as_source(source)
    into = Path(into).absolute()
    if into.exists() and (not into.is_dir() or any(into.iterdir())):
        raise UsageError(f"{into}: must be an empty folder or not exist yet")
    outer = check_outer(bundle, signer, hash_encrypted=False)
    if outer.problems:
        raise BundleCorrupt("\n".join(outer.problems))
    if INDEX_NAME not in outer.sums:
        raise BundleCorrupt(f"{INDEX_NAME}: not listed in {SUMS_NAME}")
    into.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{into.name}.opening-", dir=into.parent))
    try:
        manifest, members = read_index(bundle, identities, outer)
        problems = check_volume_listing(manifest, outer)
        if problems:
            raise BundleCorrupt("\n".join(problems))
        index_dir = staging / INDEX_FOLDER
        index_dir.mkdir()
        for name, data in members.items():
            _write_index_member(index_dir, name, data)
        for volume in manifest.volumes:
            dest = staging / volume_folder(volume.file)
            _open_volume(bundle, volume, identities, outer.sums[volume.file], dest)
        into.mkdir(exist_ok=True)
        for child in sorted(staging.iterdir()):
            os.replace(child, into / child.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _write_index_member(index_dir: Path, name: str, data: bytes) -> None:
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise BundleCorrupt(f"{INDEX_NAME}: member {name!r} points outside the folder: refused")
    target = index_dir.joinpath(*pure.parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
