"""Verify and open restitution bundles.

`verify_bundle` checks what a client checks with standard tools, and more:
the outer `SHA256SUMS` (missing, extra and altered files), its signature,
and with an identity every volume decrypted as a stream and every member
re-hashed against MANIFEST.json and the volume's own `SHA256SUMS`, without
writing plaintext to disk. Each problem is one line naming the file.

`open_bundle` extracts into a staging folder next to the destination with
`tarfile`'s `data` filter, refuses links, device files and paths leaving
the destination, checks every hash as it goes, and moves the result into
place only when everything matched: a failed open leaves the destination
as it was.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import IO

from handover.bundle.age import AgeReader, Identity
from handover.bundle.hashing import HashingReader
from handover.bundle.local import DirectorySource
from handover.bundle.manifest import MANIFEST_NAME, Manifest, VolumeRecord, load_manifest
from handover.bundle.pump import pump_tar
from handover.bundle.readme import NAMESPACE, volume_folder
from handover.bundle.sums import SUMS_NAME, parse_sums
from handover.bundle.tarparse import TarParser
from handover.bundle.types import BundleSource, MemberRecord
from handover.bundle.writer import INDEX_NAME, PROVIDER_KEY_NAME, SIGNATURE_NAME
from handover.errors import (
    BundleCorrupt,
    BundleError,
    KeyFormatError,
    UsageError,
)
from handover.sshkeys import SSH_KEY_TYPES

COPY_SIZE = 1 << 20
MAX_SMALL_FILE = 1 << 20  # SHA256SUMS, its signature, provider.pub
MAX_PROBLEMS_PER_VOLUME = 20
INDEX_FOLDER = "index"
_SIGNED = {SUMS_NAME, SIGNATURE_NAME}
# The signature file is not covered by a checksum: accept only the exact armor handover writes,
# so that no byte of it can change unnoticed (not even whitespace).
_ARMOR = re.compile(
    r"-----BEGIN SSH SIGNATURE-----\n(?:[A-Za-z0-9+/]{1,76}={0,2}\n)+-----END SSH SIGNATURE-----\n"
)


def _as_source(source: BundleSource | Path | str) -> BundleSource:
    if isinstance(source, str | Path):
        return DirectorySource(Path(source))
    return source


def _read_small(source: BundleSource, relpath: str) -> bytes:
    with source.open_read(relpath) as handle:
        data = handle.read(MAX_SMALL_FILE + 1)
    if len(data) > MAX_SMALL_FILE:
        raise BundleCorrupt(f"{relpath}: larger than {MAX_SMALL_FILE} bytes, not a bundle file")
    return bytes(data)


def _hash_file(source: BundleSource, relpath: str) -> str:
    sha = hashlib.sha256()
    with source.open_read(relpath) as handle:
        while chunk := handle.read(COPY_SIZE):
            sha.update(chunk)
    return sha.hexdigest()


def _signer_line(signer: str | Path | None, source: BundleSource) -> tuple[str, str]:
    """The public key line to check the signature with, and how to name it in messages."""
    if signer is None:
        data = _read_small(source, PROVIDER_KEY_NAME)
        return data.decode("utf-8", "replace").strip(), PROVIDER_KEY_NAME
    text = str(signer).strip()
    if text and text.split(None, 1)[0] in SSH_KEY_TYPES:  # a key line, not a file name
        return text, "the given signer key"
    try:
        line = Path(text).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise KeyFormatError(f"{text}: cannot read signer key: {exc.strerror}") from exc
    if not line:
        raise KeyFormatError(f"{text}: empty signer key file")
    return line.splitlines()[0], text


class _Outer:
    """Result of the checks that need no identity."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.sums: dict[str, str] = {}
        self.present: set[str] = set()


def _check_outer(
    source: BundleSource, signer: str | Path | None, *, hash_encrypted: bool
) -> _Outer:
    """SHA256SUMS listing, signature, and hashes (of `.age` files only if `hash_encrypted`)."""
    from handover.bundle.sshsig import verify

    result = _Outer()
    problems = result.problems
    result.present = set(source.list_files())
    if SUMS_NAME not in result.present:
        problems.append(
            f"{SUMS_NAME}: missing: the bundle is incomplete (sealing did not finish) or damaged"
        )
        return result
    sums_data = _read_small(source, SUMS_NAME)
    try:
        result.sums = parse_sums(sums_data, SUMS_NAME)
    except BundleError as exc:
        problems.append(f"{exc} (corrupted or tampered)")
    if SIGNATURE_NAME not in result.present:
        problems.append(f"{SIGNATURE_NAME}: missing: the bundle is unsigned or incomplete")
    else:
        try:
            public_line, key_name = _signer_line(signer, source)
            signature = _read_small(source, SIGNATURE_NAME).decode("ascii", "replace")
            if not _canonical_armor(signature):
                raise BundleCorrupt("not an armored SSH signature as handover writes it")
            verify(sums_data, signature, public_line, NAMESPACE)
        except BundleCorrupt as exc:
            problems.append(
                f"{SIGNATURE_NAME}: signature of {SUMS_NAME} does not verify with "
                f"{key_name}: {exc} (wrong signer, or {SUMS_NAME} or its signature was altered)"
            )
        except KeyFormatError as exc:
            if signer is not None:
                raise
            problems.append(f"{PROVIDER_KEY_NAME}: not a usable public key: {exc}")
        except BundleError as exc:  # provider.pub missing
            problems.append(f"{SIGNATURE_NAME}: cannot check the signature: {exc}")
    for relpath in sorted(result.sums):
        if relpath not in result.present:
            problems.append(f"{relpath}: listed in {SUMS_NAME} but missing")
    for relpath in sorted(result.present - set(result.sums) - _SIGNED):
        problems.append(f"{relpath}: not listed in {SUMS_NAME} (extra file)")
    for relpath, expected in sorted(result.sums.items()):
        if relpath not in result.present:
            continue
        if relpath.endswith(".age") and not hash_encrypted:
            continue
        if _hash_file(source, relpath) != expected:
            problems.append(_mismatch(relpath))
    return result


def _canonical_armor(text: str) -> bool:
    """Exact armor, and base64 that re-encodes to itself (no slack in padding bits)."""
    if not _ARMOR.fullmatch(text):
        return False
    body = "".join(text.splitlines()[1:-1])
    try:
        return base64.b64encode(base64.b64decode(body, validate=True)).decode() == body
    except ValueError:
        return False


def _mismatch(relpath: str) -> str:
    return f"{relpath}: SHA-256 does not match {SUMS_NAME} (corrupted or tampered)"


def _manifest_volume_problems(
    volume: VolumeRecord, parser: TarParser, recorded: list[MemberRecord]
) -> list[str]:
    """Compare what a volume holds with MANIFEST.json and with its own SHA256SUMS."""
    where = volume.file
    problems: list[str] = []
    seen = {(r[0], r[1], r[2], r[3], r[6]) for r in parser.rows}
    expected = {(m.path, m.type, m.size, m.sha256, m.link) for m in recorded}
    for path, kind, _size, _digest, _link in sorted(expected - seen, key=str):
        problems.append(
            f"{where}: member {path!r} ({kind}) differs from {MANIFEST_NAME} or is missing"
        )
    for path, kind, _size, _digest, _link in sorted(seen - expected, key=str):
        problems.append(f"{where}: member {path!r} ({kind}) is not in {MANIFEST_NAME}")
    if parser.inner_sums is None:
        problems.append(f"{where}: the volume has no {SUMS_NAME} member")
    else:
        try:
            inner = parse_sums(parser.inner_sums, f"{where}: {SUMS_NAME}")
        except BundleError as exc:
            problems.append(str(exc))
        else:
            if inner != parser.sums():
                problems.append(f"{where}: its {SUMS_NAME} does not match the members' content")
    if len(problems) > MAX_PROBLEMS_PER_VOLUME:
        more = len(problems) - MAX_PROBLEMS_PER_VOLUME
        problems = [*problems[:MAX_PROBLEMS_PER_VOLUME], f"{where}: ... and {more} more problems"]
    return problems


def _read_index(
    source: BundleSource, identities: Sequence[Identity], outer: _Outer
) -> tuple[Manifest, dict[str, bytes]]:
    """Decrypt index.tar.age in memory (it is small); return the manifest and its members."""
    with source.open_read(INDEX_NAME) as raw:
        hashing = HashingReader(raw)
        with AgeReader(hashing, identities, name=INDEX_NAME) as age:  # type: ignore[arg-type]
            members: dict[str, bytes] = {}
            try:
                with tarfile.open(fileobj=age, mode="r|") as tar:  # type: ignore[call-overload]
                    for info in tar:
                        if not info.isfile():
                            raise BundleCorrupt(f"{INDEX_NAME}: unexpected member {info.name!r}")
                        handle = tar.extractfile(info)
                        members[info.name] = handle.read() if handle else b""
            except tarfile.TarError as exc:
                raise BundleCorrupt(f"{INDEX_NAME}: not a valid tar archive: {exc}") from exc
        hashing.drain()
    expected = outer.sums.get(INDEX_NAME)
    if expected is not None and hashing.hexdigest() != expected:
        raise BundleCorrupt(_mismatch(INDEX_NAME))
    if MANIFEST_NAME not in members:
        raise BundleCorrupt(f"{INDEX_NAME}: no {MANIFEST_NAME} inside")
    inner = parse_sums(members.get(SUMS_NAME, b""), f"{INDEX_NAME}: {SUMS_NAME}")
    for name, data in members.items():
        if name != SUMS_NAME and inner.get(name) != hashlib.sha256(data).hexdigest():
            raise BundleCorrupt(f"{INDEX_NAME}: {name} does not match the index's {SUMS_NAME}")
    manifest = load_manifest(members[MANIFEST_NAME], f"{INDEX_NAME}: {MANIFEST_NAME}")
    return manifest, members


def _check_volume_listing(manifest: Manifest, outer: _Outer) -> list[str]:
    problems: list[str] = []
    listed = {v.file for v in manifest.volumes}
    for volume in manifest.volumes:
        expected = outer.sums.get(volume.file)
        if expected is None:
            problems.append(f"{volume.file}: in {MANIFEST_NAME} but not in {SUMS_NAME}")
        elif expected != volume.sha256:
            problems.append(f"{volume.file}: SHA-256 in {MANIFEST_NAME} and {SUMS_NAME} differ")
    for relpath in sorted(outer.sums):
        if relpath.startswith("volumes/") and relpath not in listed:
            problems.append(f"{relpath}: not in {MANIFEST_NAME}")
    return problems


def verify_bundle(
    source: BundleSource | Path | str,
    identities: Sequence[Identity] | None = None,
    signer: str | Path | None = None,
) -> list[str]:
    """Check a bundle; return one line per problem (empty list: all good).

    Without identities: outer SHA256SUMS and signature (against `signer`, a
    public key line or file, else the bundle's own provider.pub). With
    identities: also decrypt the index and every volume as streams and
    re-hash every member. Raises UsageError for an unreadable signer key or
    a missing bundle folder; everything else is reported as a problem.
    """
    bundle = _as_source(source)
    outer = _check_outer(bundle, signer, hash_encrypted=not identities)
    problems = outer.problems
    if not identities or SUMS_NAME not in outer.present:
        return problems
    # Encrypted files are hashed while they are decrypted; any that is not (no index, no
    # matching identity, not in the manifest) is hashed on its own at the end.
    decrypted: set[str] = set()
    if INDEX_NAME in outer.present:
        try:
            manifest, _ = _read_index(bundle, identities, outer)
        except BundleError as exc:  # NoMatchingIdentity too
            problems.append(str(exc))
        else:
            decrypted.add(INDEX_NAME)
            problems += _check_volume_listing(manifest, outer)
            for volume in manifest.volumes:
                if volume.file in outer.present:
                    problems += _verify_volume(
                        bundle, volume, identities, outer.sums.get(volume.file)
                    )
                    decrypted.add(volume.file)
    for relpath, expected in sorted(outer.sums.items()):
        unchecked = relpath.endswith(".age") and relpath not in decrypted
        if unchecked and relpath in outer.present and _hash_file(bundle, relpath) != expected:
            problems.append(_mismatch(relpath))
    return problems


def _verify_volume(
    source: BundleSource, volume: VolumeRecord, identities: Sequence[Identity], expected: str | None
) -> list[str]:
    parser = TarParser(volume.file, capture_sums=True)
    problems: list[str] = []
    with source.open_read(volume.file) as raw:
        hashing = HashingReader(raw)
        try:
            with AgeReader(hashing, identities, name=volume.file) as age:  # type: ignore[arg-type]
                pump_tar(age, parser, None)  # type: ignore[arg-type]
        except BundleError as exc:
            problems.append(str(exc))
        hashing.drain()
    if expected is not None and hashing.hexdigest() != expected:
        problems.insert(0, _mismatch(volume.file))
    if not problems:
        problems += _manifest_volume_problems(volume, parser, volume.members)
    return problems


# -- open ------------------------------------------------------------------------------------


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
        raise BundleCorrupt(_mismatch(where))
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
    bundle = _as_source(source)
    into = Path(into).absolute()
    if into.exists() and (not into.is_dir() or any(into.iterdir())):
        raise UsageError(f"{into}: must be an empty folder or not exist yet")
    outer = _check_outer(bundle, signer, hash_encrypted=False)
    if outer.problems:
        raise BundleCorrupt("\n".join(outer.problems))
    if INDEX_NAME not in outer.sums:
        raise BundleCorrupt(f"{INDEX_NAME}: not listed in {SUMS_NAME}")
    into.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{into.name}.opening-", dir=into.parent))
    try:
        manifest, members = _read_index(bundle, identities, outer)
        problems = _check_volume_listing(manifest, outer)
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
