"""Read restitution bundles: the outer checks, the index, and `verify_bundle`.

`verify_bundle` checks what a client checks with standard tools, and more:
the outer `SHA256SUMS` (missing, extra and altered files), its signature,
and with an identity every volume decrypted as a stream and every member
re-hashed against MANIFEST.json and the volume's own `SHA256SUMS`, without
writing plaintext to disk. Each problem is one line naming the file.

The outer checks and the index are shared with `extract.open_bundle`, so
that verifying and opening read a bundle the same way.
"""

from __future__ import annotations

import base64
import hashlib
import re
import tarfile
from collections.abc import Sequence
from pathlib import Path

from handover.bundle.age import AgeReader, Identity
from handover.bundle.hashing import HashingReader
from handover.bundle.local import DirectorySource
from handover.bundle.manifest import MANIFEST_NAME, Manifest, VolumeRecord, load_manifest
from handover.bundle.pump import pump_tar
from handover.bundle.readme import NAMESPACE
from handover.bundle.sums import SUMS_NAME, parse_sums
from handover.bundle.tarparse import TarParser
from handover.bundle.types import BundleSource, MemberRecord
from handover.bundle.writer import INDEX_NAME, PROVIDER_KEY_NAME, SIGNATURE_NAME
from handover.errors import (
    BundleCorrupt,
    BundleError,
    KeyFormatError,
)
from handover.sshkeys import SSH_KEY_TYPES

COPY_SIZE = 1 << 20
MAX_SMALL_FILE = 1 << 20  # SHA256SUMS, its signature, provider.pub
MAX_PROBLEMS_PER_VOLUME = 20
_SIGNED = {SUMS_NAME, SIGNATURE_NAME}
# The signature file is not covered by a checksum: accept only the exact armor handover writes,
# so that no byte of it can change unnoticed (not even whitespace).
_ARMOR = re.compile(
    r"-----BEGIN SSH SIGNATURE-----\n(?:[A-Za-z0-9+/]{1,76}={0,2}\n)+-----END SSH SIGNATURE-----\n"
)


def as_source(source: BundleSource | Path | str) -> BundleSource:
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


class OuterChecks:
    """Result of the checks that need no identity."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.sums: dict[str, str] = {}
        self.present: set[str] = set()


def check_outer(
    source: BundleSource, signer: str | Path | None, *, hash_encrypted: bool
) -> OuterChecks:
    """SHA256SUMS listing, signature, and hashes (of `.age` files only if `hash_encrypted`)."""
    from handover.bundle.sshsig import verify

    result = OuterChecks()
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
            problems.append(mismatch_problem(relpath))
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


def mismatch_problem(relpath: str) -> str:
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


def read_index(
    source: BundleSource, identities: Sequence[Identity], outer: OuterChecks
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
        raise BundleCorrupt(mismatch_problem(INDEX_NAME))
    if MANIFEST_NAME not in members:
        raise BundleCorrupt(f"{INDEX_NAME}: no {MANIFEST_NAME} inside")
    inner = parse_sums(members.get(SUMS_NAME, b""), f"{INDEX_NAME}: {SUMS_NAME}")
    for name, data in members.items():
        if name != SUMS_NAME and inner.get(name) != hashlib.sha256(data).hexdigest():
            raise BundleCorrupt(f"{INDEX_NAME}: {name} does not match the index's {SUMS_NAME}")
    manifest = load_manifest(members[MANIFEST_NAME], f"{INDEX_NAME}: {MANIFEST_NAME}")
    return manifest, members


def check_volume_listing(manifest: Manifest, outer: OuterChecks) -> list[str]:
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
    bundle = as_source(source)
    outer = check_outer(bundle, signer, hash_encrypted=not identities)
    problems = outer.problems
    if not identities or SUMS_NAME not in outer.present:
        return problems
    # Encrypted files are hashed while they are decrypted; any that is not (no index, no
    # matching identity, not in the manifest) is hashed on its own at the end.
    decrypted: set[str] = set()
    if INDEX_NAME in outer.present:
        try:
            manifest, _ = read_index(bundle, identities, outer)
        except BundleError as exc:  # NoMatchingIdentity too
            problems.append(str(exc))
        else:
            decrypted.add(INDEX_NAME)
            problems += check_volume_listing(manifest, outer)
            for volume in manifest.volumes:
                if volume.file in outer.present:
                    problems += _verify_volume(
                        bundle, volume, identities, outer.sums.get(volume.file)
                    )
                    decrypted.add(volume.file)
    for relpath, expected in sorted(outer.sums.items()):
        unchecked = relpath.endswith(".age") and relpath not in decrypted
        if unchecked and relpath in outer.present and _hash_file(bundle, relpath) != expected:
            problems.append(mismatch_problem(relpath))
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
        problems.insert(0, mismatch_problem(volume.file))
    if not problems:
        problems += _manifest_volume_problems(volume, parser, volume.members)
    return problems
