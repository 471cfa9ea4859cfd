"""Read restitution bundles: the outer checks, the index, and `verify_bundle`.

`verify_bundle` checks what a client checks with standard tools, and more:
the outer `SHA256SUMS` (missing, extra and altered files), its signature,
and with an identity every volume decrypted as a stream and every member
re-hashed against MANIFEST.json and the volume's own `SHA256SUMS`, without
writing plaintext to disk. Each problem is one line naming the file.

Memory stays bounded whatever the size of the bundle: MANIFEST.json is
parsed as it streams out of the index (manifest_stream.py), each volume's
members and `SHA256SUMS` are folded into multiset digests as they are read
(volcheck.py), and the member policy's table of paths moves to disk, as
keyed digests only, past a limit (pathtable.py).

The outer checks and the index are shared with `extract.open_bundle`, so
that verifying and opening read a bundle the same way.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from handover.bundle.age import AgeReader, Identity
from handover.bundle.hashing import HashingReader
from handover.bundle.local import DirectorySource
from handover.bundle.manifest import MANIFEST_NAME
from handover.bundle.manifest_stream import ManifestOutline, ManifestStream, VolumeOutline
from handover.bundle.pathtable import PathTable
from handover.bundle.pump import pump_tar
from handover.bundle.readme import NAMESPACE, volume_file_problem
from handover.bundle.sums import SUMS_NAME, parse_sums
from handover.bundle.tarparse import Extractor, MemberPolicy, TarParser, shown
from handover.bundle.types import BundleSource
from handover.bundle.volcheck import SumsCheck, VolumeCheck
from handover.bundle.writer import INDEX_NAME, PROVIDER_KEY_NAME, SIGNATURE_NAME
from handover.errors import (
    BundleCorrupt,
    BundleError,
    KeyFormatError,
    NoMatchingIdentity,
)
from handover.sshkeys import SSH_KEY_TYPES, line_fingerprint

COPY_SIZE = 1 << 20
MAX_SMALL_FILE = 1 << 20  # SHA256SUMS, its signature, provider.pub
MAX_PROBLEMS_PER_VOLUME = 20
MAX_INDEX_SUMS_SIZE = 16 << 20
READ_SIZE = 1 << 20  # pump buffers (four of them): the peak RSS of verify counts them
MAX_INDEX_MEMBERS = 100_000  # documents of the handover: a few hundred in practice
_SIGNED = {SUMS_NAME, SIGNATURE_NAME}
# The signature file is not covered by a checksum: accept only the exact armor handover writes,
# so that no byte of it can change unnoticed (not even whitespace).
_ARMOR = re.compile(
    r"-----BEGIN SSH SIGNATURE-----\n(?:[A-Za-z0-9+/]{1,76}={0,2}\n)+-----END SSH SIGNATURE-----\n"
)


class ReadProgress(Protocol):
    """Told how far the reading of a bundle's encrypted files has gone (a progress display).

    `advance` comes with every piece of ciphertext read, from the reading
    thread. `remaining` comes once, when the manifest has been read (so the
    index is, too): the bytes of the volumes still to read. A verify without
    a key only hashes the encrypted files, and has no manifest to say how
    much: `remaining` does not come then.
    """

    def advance(self, count: int) -> None: ...

    def remaining(self, count: int) -> None: ...


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


def _hash_file(source: BundleSource, relpath: str, progress: ReadProgress | None = None) -> str:
    sha = hashlib.sha256()
    with source.open_read(relpath) as handle:
        while chunk := handle.read(COPY_SIZE):
            sha.update(chunk)
            if progress is not None:
                progress.advance(len(chunk))
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
    """Result of the checks that need no identity.

    `signer_fingerprint` is the `SHA256:` fingerprint of the key the
    signature verified with (None when it did not verify); `signer_checked`
    says whether that key was one the reader supplied (`--signer`) rather
    than the bundle's own provider.pub, which proves nothing by itself.
    """

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.sums: dict[str, str] = {}
        self.present: set[str] = set()
        self.signer_fingerprint: str | None = None
        self.signer_checked = False


def named(relpath: str) -> str:
    """A bundle file's path as the first word of a problem: as is, quoted only when odd."""
    return relpath if relpath.isprintable() and len(relpath) <= 200 else shown(relpath)


def plain_relpath(relpath: str) -> bool:
    """A path a bundle may list: relative, no empty, '.' or '..' component, no NUL."""
    if not relpath or relpath.startswith("/") or "\0" in relpath:
        return False
    return all(part not in ("", ".", "..") for part in relpath.split("/"))


def check_outer(
    source: BundleSource,
    signer: str | Path | None,
    *,
    hash_encrypted: bool,
    progress: ReadProgress | None = None,
) -> OuterChecks:
    """SHA256SUMS listing, signature, and hashes (of `.age` files only if `hash_encrypted`).

    `progress` follows the hashing of the `.age` files.
    """
    from handover.bundle.sshsig import verify

    result = OuterChecks()
    problems = result.problems
    result.present = set(source.list_files())
    if SUMS_NAME not in result.present:
        problems.append(
            f"{SUMS_NAME}: missing: the bundle is incomplete (sealing did not finish) or damaged"
        )
        return result
    try:
        sums_data = _read_small(source, SUMS_NAME)
    except BundleError as exc:
        problems.append(str(exc))
        return result
    try:
        listed = parse_sums(sums_data, SUMS_NAME)
    except BundleError as exc:
        problems.append(f"{exc} (corrupted or tampered)")
        listed = {}
    for relpath in sorted(listed):
        if not plain_relpath(relpath):
            problems.append(
                f"{SUMS_NAME}: lists {shown(relpath)}, not a plain relative path: refused"
            )
            del listed[relpath]
    result.sums = listed
    if SIGNATURE_NAME not in result.present:
        problems.append(f"{SIGNATURE_NAME}: missing: the bundle is unsigned or incomplete")
    else:
        try:
            public_line, key_name = _signer_line(signer, source)
            signature = _read_small(source, SIGNATURE_NAME).decode("ascii", "replace")
            if not _canonical_armor(signature):
                raise BundleCorrupt("not an armored SSH signature as handover writes it")
            verify(sums_data, signature, public_line, NAMESPACE)
            result.signer_fingerprint = line_fingerprint(public_line)
            result.signer_checked = signer is not None
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
        problems.append(_extra_problem(source, relpath))
    for relpath, expected in sorted(result.sums.items()):
        if relpath not in result.present:
            continue
        encrypted = relpath.endswith(".age")
        if encrypted and not hash_encrypted:
            continue
        problems += hash_problems(source, relpath, expected, progress if encrypted else None)
    return result


def _extra_problem(source: BundleSource, relpath: str) -> str:
    """An unlisted entry: said as irregular when it is (a link, a device), else as extra."""
    try:
        with source.open_read(relpath):
            pass
    except BundleCorrupt as exc:
        return str(exc)
    except BundleError:
        pass
    return f"{named(relpath)}: not listed in {SUMS_NAME} (extra file)"


def hash_problems(
    source: BundleSource, relpath: str, expected: str, progress: ReadProgress | None = None
) -> list[str]:
    """[] when the file hashes to `expected`, else the one line saying why not."""
    try:
        digest = _hash_file(source, relpath, progress)
    except BundleError as exc:  # not a regular file, unreadable
        return [str(exc)]
    return [] if digest == expected else [mismatch_problem(relpath)]


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
    volume: VolumeOutline, parser: TarParser, check: VolumeCheck, sums: SumsCheck
) -> list[str]:
    """Compare what a volume holds with MANIFEST.json and with its own SHA256SUMS.

    Both are multiset equalities decided on digests (volcheck.py); the
    members that differ are named when the volume is small enough for the
    reader to have kept them, else the counts are given.
    """
    where = volume.file
    problems: list[str] = []
    if not check.members.same(volume.digest):
        if volume.retained is not None and check.retained is not None:
            seen, expected = set(check.retained), set(volume.retained)
            for path, kind, _size, _digest, _link in sorted(expected - seen, key=str):
                problems.append(
                    f"{where}: member {shown(path)} ({kind}) differs from {MANIFEST_NAME} "
                    "or is missing"
                )
            for path, kind, _size, _digest, _link in sorted(seen - expected, key=str):
                problems.append(f"{where}: member {shown(path)} ({kind}) is not in {MANIFEST_NAME}")
        if not problems:
            problems.append(
                f"{where}: its members differ from {MANIFEST_NAME} ({check.members.count} "
                f"read, {volume.member_count} listed)"
            )
    if not parser.sums_seen:
        problems.append(f"{where}: the volume has no {SUMS_NAME} member")
    elif sums.error is not None:
        problems.append(sums.error)
    elif not sums.digest.same(check.sums):
        problems.append(f"{where}: its {SUMS_NAME} does not match the members' content")
    if len(problems) > MAX_PROBLEMS_PER_VOLUME:
        more = len(problems) - MAX_PROBLEMS_PER_VOLUME
        problems = [*problems[:MAX_PROBLEMS_PER_VOLUME], f"{where}: ... and {more} more problems"]
    return problems


def _discard(view: Any) -> None:
    return None


class _IndexTee:
    """The index's extractor: MANIFEST.json to the streaming parser, all of it to `inner`."""

    def __init__(self, inner: Extractor | None, manifest: ManifestStream) -> None:
        self._inner = inner
        self._manifest = manifest
        self.manifest_seen = False

    def directory(self, path: str) -> None:
        if self._inner is not None:
            self._inner.directory(path)

    def open_file(self, path: str, mode: int, mtime: float) -> Callable[[Any], Any]:
        write = self._inner.open_file(path, mode, mtime) if self._inner is not None else None
        if path != MANIFEST_NAME:
            return write if write is not None else _discard
        self.manifest_seen = True
        feed = self._manifest.feed
        if write is None:
            return feed
        out = write

        def both(view: Any) -> None:
            feed(view)
            out(view)

        return both

    def close_file(self) -> None:
        if self._inner is not None:
            self._inner.close_file()

    def symlink(self, path: str, target: str) -> None:
        if self._inner is not None:
            self._inner.symlink(path, target)

    def hardlink(self, path: str, target: str) -> None:
        if self._inner is not None:
            self._inner.hardlink(path, target)


def read_index(
    source: BundleSource,
    identities: Sequence[Identity],
    outer: OuterChecks,
    extractor: Extractor | None = None,
    progress: ReadProgress | None = None,
) -> ManifestOutline:
    """Decrypt index.tar.age as a stream and return the outline of its manifest.

    The ciphertext is hashed as it is decrypted and the tar read by the same
    parser and member policy as the volumes. MANIFEST.json is parsed as it
    streams past (never held whole); only the index's SHA256SUMS is held in
    memory (capped); the documents are hashed on the way (and written by
    `extractor`, for open). A parse error on a file whose digest does not
    match is reported as the mismatch. The caller closes the outline's
    `targets` table (`close_outline`).
    """
    policy = MemberPolicy(INDEX_NAME)
    targets = PathTable()
    stream = ManifestStream(f"{INDEX_NAME}: {MANIFEST_NAME}", os.urandom(32), targets)
    tee = _IndexTee(extractor, stream)
    parser = TarParser(
        INDEX_NAME,
        capture_sums=True,
        sums_limit=MAX_INDEX_SUMS_SIZE,
        policy=policy,
        extractor=tee,
        max_members=MAX_INDEX_MEMBERS,
    )
    expected = outer.sums.get(INDEX_NAME)
    failure: BundleError | None = None
    try:
        with source.open_read(INDEX_NAME) as raw:
            hashing = HashingReader(raw, progress.advance if progress is not None else None)
            try:
                with AgeReader(hashing, identities, name=INDEX_NAME) as age:  # type: ignore[arg-type]
                    pump_tar(age, parser, None, read_size=READ_SIZE)  # type: ignore[arg-type]
            except BundleError as exc:
                failure = exc
            hashing.drain()
        if expected is not None and hashing.hexdigest() != expected:
            raise BundleCorrupt(mismatch_problem(INDEX_NAME))
        if isinstance(failure, BundleCorrupt | NoMatchingIdentity):
            raise failure
        if failure is not None:  # the parser's BundleError: the content is at fault
            raise BundleCorrupt(str(failure)) from failure
        for path, kind, *_ in parser.rows:
            if kind != "file":
                raise BundleCorrupt(f"{INDEX_NAME}: unexpected member {shown(path)} ({kind})")
        if not tee.manifest_seen:
            raise BundleCorrupt(f"{INDEX_NAME}: no {MANIFEST_NAME} inside")
        inner = parse_sums(parser.inner_sums or b"", f"{INDEX_NAME}: {SUMS_NAME}")
        for path, digest in parser.sums().items():
            if inner.get(path) != digest:
                raise BundleCorrupt(
                    f"{INDEX_NAME}: {shown(path)} does not match the index's {SUMS_NAME}"
                )
        return stream.close()
    except BaseException:
        targets.close()
        raise
    finally:
        policy.close()


def close_outline(manifest: ManifestOutline) -> None:
    """Remove what reading the manifest left on disk (the hard link targets' table)."""
    manifest.targets.close()


def check_volume_listing(manifest: ManifestOutline, outer: OuterChecks) -> list[str]:
    problems: list[str] = []
    listed = {v.file for v in manifest.volumes}
    if len(listed) != len(manifest.volumes):
        problems.append(f"{INDEX_NAME}: {MANIFEST_NAME} lists a volume file twice")
    for volume in manifest.volumes:
        named = volume_file_problem(volume.file)
        if named is not None:
            problems.append(f"{INDEX_NAME}: {MANIFEST_NAME}: volume {shown(volume.file)} {named}")
            continue
        expected = outer.sums.get(volume.file)
        if expected is None:
            problems.append(f"{volume.file}: in {MANIFEST_NAME} but not in {SUMS_NAME}")
        elif expected != volume.sha256:
            problems.append(f"{volume.file}: SHA-256 in {MANIFEST_NAME} and {SUMS_NAME} differ")
    for relpath in sorted(outer.sums):
        if relpath.startswith("volumes/") and relpath not in listed:
            problems.append(f"{relpath}: not in {MANIFEST_NAME}")
    return problems


class VerifyOutcome:
    """What `verify_bundle_outcome` found: the problems, and who signed (see OuterChecks)."""

    def __init__(self, problems: list[str], outer: OuterChecks) -> None:
        self.problems = problems
        self.signer_fingerprint = outer.signer_fingerprint
        self.signer_checked = outer.signer_checked


def verify_bundle(
    source: BundleSource | Path | str,
    identities: Sequence[Identity] | None = None,
    signer: str | Path | None = None,
) -> list[str]:
    """Check a bundle; return one line per problem (empty list: all good).

    Without identities: outer SHA256SUMS and signature (against `signer`, a
    public key line or file, else the bundle's own provider.pub). With
    identities: also decrypt the index and every volume as streams and
    re-hash every member, applying the member policy `handover open` applies
    (a bundle open would refuse is reported here). Raises UsageError for an
    unreadable signer key or a missing bundle folder; everything else is
    reported as a problem.
    """
    return verify_bundle_outcome(source, identities, signer).problems


def verify_bundle_outcome(
    source: BundleSource | Path | str,
    identities: Sequence[Identity] | None = None,
    signer: str | Path | None = None,
    *,
    progress: ReadProgress | None = None,
) -> VerifyOutcome:
    """`verify_bundle`, also saying which key signed and whether the reader supplied it.

    `progress` follows the decryption of the index and the volumes (without
    identities, the hashing of the encrypted files: no total is told then).
    """
    bundle = as_source(source)
    outer = check_outer(
        bundle, signer, hash_encrypted=not identities, progress=None if identities else progress
    )
    problems = outer.problems
    if not identities or SUMS_NAME not in outer.present:
        return VerifyOutcome(problems, outer)
    # Encrypted files are hashed while they are decrypted; any that is not (no index, no
    # matching identity, not in the manifest) is hashed on its own at the end.
    decrypted: set[str] = set()
    if INDEX_NAME in outer.present:
        try:
            manifest = read_index(bundle, identities, outer, progress=progress)
        except BundleError as exc:  # NoMatchingIdentity too
            problems.append(str(exc))
        else:
            decrypted.add(INDEX_NAME)
            try:
                problems += check_volume_listing(manifest, outer)
                readable = [
                    volume
                    for volume in manifest.volumes
                    if volume.file in outer.present and volume_file_problem(volume.file) is None
                ]
                if progress is not None:
                    progress.remaining(sum(v.head.size for v in readable))
                for volume in readable:
                    expected = outer.sums.get(volume.file)
                    problems += read_volume(
                        bundle, manifest, volume, identities, expected, progress=progress
                    )
                    decrypted.add(volume.file)
            finally:
                close_outline(manifest)
    for relpath, expected in sorted(outer.sums.items()):
        unchecked = relpath.endswith(".age") and relpath not in decrypted
        if unchecked and relpath in outer.present:
            problems += hash_problems(bundle, relpath, expected, progress)
    return VerifyOutcome(problems, outer)


def read_volume(
    source: BundleSource,
    manifest: ManifestOutline,
    volume: VolumeOutline,
    identities: Sequence[Identity],
    expected: str | None,
    extractor: Extractor | None = None,
    progress: ReadProgress | None = None,
) -> list[str]:
    """Decrypt, parse and check one volume; return one line per problem.

    Verify and open both come here (open with an `extractor` writing the
    members), so they parse the same bytes with the same member policy and
    compare the same things: the ciphertext digest, the volume's own
    SHA256SUMS and the manifest's members. Nothing proportional to the
    volume is held: members and SHA256SUMS lines are folded into digests as
    they pass, and the policy's path table spills to disk when large.
    """
    check = VolumeCheck(
        volume.number,
        manifest.key,
        manifest.targets if volume.hardlinks else None,
        retain=volume.retained is not None,
    )
    sums = SumsCheck(f"{volume.file}: {SUMS_NAME}", manifest.key)
    policy = MemberPolicy(volume.file)
    parser = TarParser(
        volume.file,
        capture_sums=True,
        policy=policy,
        extractor=extractor,
        max_members=volume.member_count + 1,  # one more: that row is then reported
        rows=check,
        sums_sink=sums,
    )
    problems: list[str] = []
    try:
        with source.open_read(volume.file) as raw:
            hashing = HashingReader(raw, progress.advance if progress is not None else None)
            try:
                with AgeReader(hashing, identities, name=volume.file) as age:  # type: ignore[arg-type]
                    pump_tar(age, parser, None, read_size=READ_SIZE)  # type: ignore[arg-type]
            except BundleError as exc:
                problems.append(str(exc))
            hashing.drain()
    except BundleError as exc:  # not a regular file, vanished
        return [str(exc)]
    finally:
        policy.close()
    if expected is not None and hashing.hexdigest() != expected:
        problems.insert(0, mismatch_problem(volume.file))
    if not problems:
        problems += _manifest_volume_problems(volume, parser, check, sums)
    return problems
