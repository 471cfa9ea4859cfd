"""Seal restitution bundles: volumes, encrypted index, README, checksums, signature.

One pass over the data: GNU tar (or a remote tar, or S3) produces the
stream, handover parses and hashes it, appends the volume's `SHA256SUMS`,
encrypts it to the recipients and hashes the ciphertext on its way to the
target; the outer `SHA256SUMS` is written from those hashes, never by
reading volumes back.

Crash and resume: each bundle file appears under its final name only when
complete (`BundleTarget.open_write`), and `SHA256SUMS.sig` is written last,
so a bundle without it is unfinished, whatever else is there. A crashed seal
leaves complete volumes and temporary `.NAME.*.tmp` files. A new
`BundleWriter` on the same target deletes the temporary files; the caller
re-registers the volumes it trusts with `adopt_volume(record)` (the flow
keeps the VolumeRecords of finished tasks) and rebuilds the others with
`add_volume(source, number=N)`, which overwrites a volume of the same name.
`finish()` then rewrites the index, README, checksums and signature. A volume
file of the crashed run that is neither adopted nor rebuilt stays in the
folder and `verify` reports it as an extra file.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import tarfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, cast

from pydantic import BaseModel, ConfigDict

from handover.bundle.age import AgeWriter, Recipient
from handover.bundle.hashing import ThreadedHashingWriter
from handover.bundle.labels import slugify
from handover.bundle.local import DirectoryTarget
from handover.bundle.manifest import (
    MANIFEST_NAME,
    DocumentRecord,
    Manifest,
    VolumeRecord,
)
from handover.bundle.members import MemberTable
from handover.bundle.pump import pump_tar, seal_trailer
from handover.bundle.readme import NAMESPACE, ReadmeFacts, VolumeFacts, render_readme
from handover.bundle.sshsig import SigningKey, sign
from handover.bundle.sums import SUMS_NAME, render_sums
from handover.bundle.tarparse import TarParser
from handover.bundle.types import BundleTarget, VolumeSource
from handover.errors import BundleError, UsageError

INDEX_NAME = "index.tar.age"
README_NAME = "README.txt"
PROVIDER_KEY_NAME = "provider.pub"
SIGNATURE_NAME = "SHA256SUMS.sig"
VOLUMES_DIR = "volumes"
COPY_SIZE = 1 << 20

Progress = Callable[[int], None]


def _volume_facts(record: VolumeRecord) -> VolumeFacts:
    """What README.txt needs of a volume: which restore instructions its files call for."""
    files = (path for path in record.members.file_paths() if path != SUMS_NAME)
    first = list(itertools.islice(files, 2))  # one file or more: see VolumeFacts
    return VolumeFacts(file=record.file, number=record.number, member_files=first)


class BundleResult(BaseModel):
    """What `finish()` wrote: every outer file with its SHA-256, and the volumes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    location: str
    volumes: list[VolumeRecord]
    files: dict[str, str]  # bundle-relative path -> SHA-256, as in SHA256SUMS
    manifest_sha256: str
    provider_key: str
    created: str


class BundleWriter:
    """Builds one bundle on a target folder (or S3 prefix through a BundleTarget).

    `add_volume` may be called from several threads at once; `progress` is
    then called from those threads too (with byte counts of tar read).
    Raises UsageError for an empty recipient list.
    """

    def __init__(
        self,
        target: BundleTarget | Path,
        recipients: Sequence[Recipient],
        signing_key: SigningKey,
        *,
        progress: Progress | None = None,
        title: str = "",
    ) -> None:
        if not recipients:
            raise UsageError("a bundle needs at least one recipient (--to)")
        self.target: BundleTarget = DirectoryTarget(target) if isinstance(target, Path) else target
        self.recipients = list(recipients)
        self.signing_key = signing_key
        self.progress = progress
        self.title = title
        self._lock = threading.Lock()
        self._next_number = 1
        self._volumes: dict[int, VolumeRecord] = {}
        self._finished = False
        remove_partials = getattr(self.target, "remove_partials", None)
        if remove_partials is not None:
            remove_partials()

    # -- volumes -------------------------------------------------------------------------

    def _reserve(self, number: int | None) -> int:
        with self._lock:
            if self._finished:
                raise BundleError(f"{self.target.describe()}: bundle already finished")
            if number is None:
                number = self._next_number
            if number < 1 or number > 9999:
                raise BundleError(f"volume number {number} out of range 1..9999")
            self._next_number = max(self._next_number, number + 1)
            return number

    def add_volume(self, source: VolumeSource, *, number: int | None = None) -> VolumeRecord:
        """Seal one dataset into `volumes/NNNN-<label>.tar.age`; numbered in call order.

        The file is visible only once complete. Raises ConnectorError when the
        source fails, BundleError when its stream is not a usable tar archive.
        """
        number = self._reserve(number)
        relpath = f"{VOLUMES_DIR}/{number:04d}-{slugify(source.label)}.tar.age"
        parser = TarParser(relpath, rows=MemberTable())  # packed as they come: see members.py
        # Leaving in reverse order: tar's exit status is checked, then the final age
        # chunk is sealed, the ciphertext threads drain, and only then is the file renamed.
        with (
            self.target.open_write(relpath) as raw,
            ThreadedHashingWriter(raw).running() as out,
            AgeWriter(cast(BinaryIO, out), self.recipients) as age,
            source.open_tar() as stream,
        ):
            tar_size = pump_tar(stream, parser, age, trailer=seal_trailer, progress=self.progress)
        record = VolumeRecord(
            number=number,
            file=relpath,
            label=source.label,
            origin=source.origin,
            size=out.size,
            sha256=out.hexdigest(),
            tar_size=tar_size,
            members=parser.members(source.member_extras()),
        )
        with self._lock:
            self._volumes[number] = record
        return record

    def adopt_volume(self, record: VolumeRecord) -> None:
        """Register a volume sealed by an earlier (crashed) run; it must still be there."""
        if not self.target.exists(record.file):
            raise BundleError(f"{record.file}: missing from {self.target.describe()}, reseal it")
        self._reserve(record.number)
        with self._lock:
            self._volumes[record.number] = record

    @property
    def volumes(self) -> list[VolumeRecord]:
        with self._lock:
            return [self._volumes[n] for n in sorted(self._volumes)]

    # -- the rest of the bundle ----------------------------------------------------------

    def finish(
        self,
        documents: Mapping[str, bytes | Path] | None = None,
        extra_manifest: Mapping[str, object] | None = None,
        readme: ReadmeFacts | None = None,
    ) -> BundleResult:
        """Write index, README, provider.pub, then SHA256SUMS and its signature last.

        `documents` maps index-relative names (`audit/log.jsonl`) to contents or
        files; `extra_manifest` adds keys under MANIFEST.json's `extra`;
        `readme` what the contract tells the client's guide (language, dates...).
        """
        documents = dict(documents or {})
        with self._lock:
            self._finished = True
        volumes = self.volumes
        created = datetime.now(UTC).replace(microsecond=0).isoformat()
        public_line = self.signing_key.public_line("provider")
        manifest = Manifest(
            created=created,
            provider_key=public_line,
            volumes=volumes,
            documents=_document_records(documents),
            extra=dict(extra_manifest or {}),
        )
        files: dict[str, str] = {v.file: v.sha256 for v in volumes}
        files[INDEX_NAME], manifest_sha256 = self._write_index(manifest, documents)
        guide = render_readme(
            [_volume_facts(v) for v in volumes],
            created,
            self.signing_key.fingerprint(),
            self.title,
            readme,
        ).encode("utf-8")
        files[README_NAME] = self._put(README_NAME, guide)
        files[PROVIDER_KEY_NAME] = self._put(PROVIDER_KEY_NAME, (public_line + "\n").encode())
        self._sign(files)
        return BundleResult(
            location=self.target.describe(),
            volumes=volumes,
            files=files,
            manifest_sha256=manifest_sha256,
            provider_key=public_line,
            created=created,
        )

    def _write_index(
        self, manifest: Manifest, documents: Mapping[str, bytes | Path]
    ) -> tuple[str, str]:
        """Seal `index.tar.age`; return its SHA-256 and the manifest's.

        MANIFEST.json is rendered piece by piece: its tar header and the
        index's SHA256SUMS need its size and SHA-256 first, so beyond a few
        MB it is rendered twice (`_Rendered`). At 100,000 members the text is
        ~21 MB, never held.
        """
        rendered = _Rendered(manifest.json_chunks)
        inner = {MANIFEST_NAME: rendered.sha256}
        inner.update({d.path: d.sha256 for d in manifest.documents})
        with (
            self.target.open_write(INDEX_NAME) as raw,
            ThreadedHashingWriter(raw).running() as out,
            AgeWriter(cast(BinaryIO, out), self.recipients) as age,
        ):
            stream = io.BufferedReader(_ChunkReader(rendered.chunks()), COPY_SIZE)
            sums = render_sums(inner)
            _write_index(age, (rendered.size, cast(BinaryIO, stream)), documents, sums)
            # tarfile reads exactly the size: this read ends the second rendering, which
            # checks it against the first before the index is complete
            if stream.read(1):
                raise BundleError(f"{MANIFEST_NAME} rendered longer the second time")
        return out.hexdigest(), rendered.sha256

    def _sign(self, files: dict[str, str]) -> None:
        """Write SHA256SUMS of `files`, then its signature last, once the rest is durable."""
        sums = render_sums(files)
        self._put(SUMS_NAME, sums)
        signature = sign(sums, self.signing_key, NAMESPACE)
        sync = getattr(self.target, "sync", None)
        if sync is not None:  # everything durable before the file that says "complete"
            sync()
        self._put(SIGNATURE_NAME, signature.encode("ascii"))
        if sync is not None:
            sync()

    def _put(self, relpath: str, data: bytes) -> str:
        with self.target.open_write(relpath) as handle:
            handle.write(data)
        return hashlib.sha256(data).hexdigest()


def _document_records(documents: Mapping[str, bytes | Path]) -> list[DocumentRecord]:
    """Each document's size and SHA-256, sorted by name (names checked first)."""
    records: list[DocumentRecord] = []
    for name in sorted(documents):
        _check_document_name(name)
        size, digest = _hash_document(documents[name])
        records.append(DocumentRecord(path=name, size=size, sha256=digest))
    return records


def _check_document_name(name: str) -> None:
    pure = PurePosixPath(name)
    if (
        not name
        or pure.is_absolute()
        or ".." in pure.parts
        or name in (MANIFEST_NAME, SUMS_NAME)
        or pure.as_posix() != name
    ):
        raise UsageError(f"document name {name!r}: must be a plain relative path, not reserved")


def _hash_document(content: bytes | Path) -> tuple[int, str]:
    if isinstance(content, bytes):
        return len(content), hashlib.sha256(content).hexdigest()
    sha = hashlib.sha256()
    size = 0
    try:
        with open(content, "rb") as handle:
            while chunk := handle.read(COPY_SIZE):
                sha.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise UsageError(f"{content}: cannot read document: {exc.strerror}") from exc
    return size, sha.hexdigest()


#: a manifest up to this size is kept from its first rendering instead of rendered again
#: (~19,000 members; 10,000 (2.1 MB) take ~30 ms to render on the 2-core machines)
MANIFEST_HOLD_BYTES = 4 << 20


class _Rendered:
    """A document whose size and SHA-256 are needed before its bytes, held only when small.

    Why: the index's tar header and SHA256SUMS need MANIFEST.json's size and
    digest before its bytes. Up to MANIFEST_HOLD_BYTES the first rendering is
    kept and written as is. Beyond, it is rendered again as it is written and
    never held: kept compressed between the two, 100,000 members held ~6 MB
    through the index's seal (~60 MB at a million), while rendering again
    costs ~0.15 s per 100,000 members. The second rendering is checked
    against the first as it goes: if they differ, the index fails (its file
    is never completed) instead of carrying a manifest that disagrees with
    its own digest.
    """

    def __init__(self, render: Callable[[], Iterable[bytes]], hold: int | None = None) -> None:
        self._render = render
        limit = MANIFEST_HOLD_BYTES if hold is None else hold
        self._held: list[bytes] | None = []
        digest = hashlib.sha256()
        self.size = 0
        for chunk in render():
            digest.update(chunk)
            self.size += len(chunk)
            if self._held is not None:
                if self.size <= limit:
                    self._held.append(chunk)
                else:
                    self._held = None
        self.sha256 = digest.hexdigest()

    def chunks(self) -> Iterator[bytes]:
        if self._held is not None:
            yield from self._held
            return
        digest = hashlib.sha256()
        size = 0
        for chunk in self._render():
            size += len(chunk)
            if size > self.size:
                break
            digest.update(chunk)
            yield chunk
        if size != self.size or digest.hexdigest() != self.sha256:
            raise BundleError(
                f"{MANIFEST_NAME} rendered differently the second time "
                f"({size} bytes against {self.size}): the index was not written"
            )


class _ChunkReader(io.RawIOBase):
    """A readable stream over byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._current = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._current:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._current = memoryview(chunk)
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self._current))
        view[:n] = self._current[:n]
        self._current = self._current[n:]
        return n


def _write_index(
    dst: AgeWriter,
    manifest: tuple[int, BinaryIO],
    documents: Mapping[str, bytes | Path],
    sums: bytes,
) -> None:
    """The index tar: MANIFEST.json, the documents, then SHA256SUMS (PAX for any name)."""
    now = time.time()
    with tarfile.open(fileobj=dst, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]

        def add(name: str, size: int, stream: BinaryIO) -> None:
            info = tarfile.TarInfo(name)
            info.size = size
            info.mode = 0o644
            info.mtime = int(now)
            tar.addfile(info, stream)

        add(MANIFEST_NAME, *manifest)
        for name in sorted(documents):
            content = documents[name]
            if isinstance(content, bytes):
                add(name, len(content), io.BytesIO(content))
            else:
                with open(content, "rb") as handle:
                    add(name, Path(content).stat().st_size, handle)
        add(SUMS_NAME, len(sums), io.BytesIO(sums))
