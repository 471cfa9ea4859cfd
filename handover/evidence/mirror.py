"""One contract's folder mirrored to S3, its index in the state store (HANDOVER_EVIDENCE_URL).

Workers that share a state database share checklists, the audit chain and
the vault, but each run writes its evidence files (baselines, inventories,
reports, delivery records...) on its own disk. With
`HANDOVER_EVIDENCE_URL=s3://bucket/prefix` those files are also kept at
`s3://bucket/prefix/<contract>/objects/<sha256>`, one object per content,
and the state store's blob `evidence-index.json` says which relpath holds
which content (`handover.state.evidence_index`). A run on worker B then
pulls what worker A pushed.

Why by content: an object's name says nothing of the client's file names,
an unchanged file is never sent twice (HEAD first), and a pull can check
every byte it fetched against the index before the file takes its name.

Why the index in the state store and not in S3: it changes by
compare-and-set (`update_blob`) per path, so two workers pushing different
files at once both land, which S3 cannot promise without locks.

Objects are deleted by `erase` only; a push turns a file removed here into a
tombstone (`erased`) that the other workers' pulls apply.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import stat
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from handover.connectors.s3.client import S3Client, join_key, parse_s3_url, s3_client
from handover.connectors.s3.errors import MISSING_OBJECT_CODES, s3_error_code, s3_errors
from handover.errors import ConnectorError, HandoverError, UsageError
from handover.evidence.tree import IN_USE_FILE, SYNC_LOCK_FILE, Seen, SyncState, is_excluded, walk
from handover.state.atomic import PRIVATE_FILE_MODE, ensure_private_dir
from handover.state.evidence_index import (
    INDEX_BLOB,
    Entry,
    Index,
    change,
    checked_relpath,
    drop_holder,
    is_under,
    load_index,
    normalized_prefixes,
    now_iso,
    referenced,
    set_files,
    set_holder,
    tombstone,
    tombstone_under,
)
from handover.state.home import CONTRACT_ID_PATTERN
from handover.state.store import ContractStore, update_blob

EVIDENCE_URL_ENV = "HANDOVER_EVIDENCE_URL"

CHUNK = 1024 * 1024  # hashing and download read size: memory stays bounded whatever the file
PART_SIZE = 8 * 1024 * 1024  # multipart part size and threshold
UPLOAD_THREADS = 4  # parts in flight per upload: memory <= about PART_SIZE * (threads + queue)
DELETE_BATCH = 1000  # the most keys one DeleteObjects call accepts


@dataclass(frozen=True)
class SyncCounts:
    """What a pull, push or evict did.

    `files`: files transferred (downloaded by pull, uploaded by push) or
    removed (pull: erased elsewhere; evict); `bytes`: bytes transferred (for
    evict: bytes of the local copies removed); `removed`: local files removed
    by pull or evict, tombstones written by push (files removed here);
    `skipped`: already up to date (evict: files kept because not pushed).
    """

    files: int = 0
    bytes: int = 0
    removed: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class ErasedObjects:
    """What `erase` did to the objects: only what S3 no longer lists counts as deleted."""

    deleted: int  # object keys whose every version is gone (checked by listing again)
    kept: int  # object keys still referenced by evidence the index keeps
    failed: tuple[str, ...]  # "key (reason)" of keys not (wholly) deleted
    where: str


class EvidenceMirror:
    """A contract folder mirrored to s3://bucket/prefix/<contract>/, indexed in the state store."""

    def __init__(
        self,
        contract: str,
        root: Path,
        store: ContractStore,
        client: S3Client,
        bucket: str,
        prefix: str,
        worker: str,
    ) -> None:
        if not CONTRACT_ID_PATTERN.match(contract):
            raise UsageError(f"contract id {contract!r}: lowercase letters, digits and '-'")
        self.contract = contract
        self.root = Path(root)
        self.store = store
        self.client = client
        self.bucket = bucket
        self.base = join_key(prefix, contract + "/")
        self.worker = worker
        self._kept_unpushed = False  # an evict in this process left unpushed files behind

    @property
    def where(self) -> str:
        """`s3://bucket/prefix/<contract>/` (no credentials)."""
        return f"s3://{self.bucket}/{self.base}"

    # -- push ---------------------------------------------------------------------------

    def push(self, only: Sequence[str] | None = None) -> SyncCounts:
        """Upload what changed here, record it in the index, tombstone what was removed here.

        Only files whose (size, mtime_ns, inode) differ from this worker's
        last sync are read again; with nothing changed this is a walk of the
        folder, with no S3 request and no index write.

        `only`: just these files (relpaths), nothing tombstoned: what a
        command outside a run (`handover item done --evidence`) adds, on a
        machine whose other copies may be stale and must not be published.
        """
        with self._sync_lock():
            state = SyncState(self.root)
            if only is None:
                present = dict(walk(self.root))
            else:
                present = {}
                for relpath in only:
                    present.update(walk(self.root, checked_relpath(relpath)))
            entries: dict[str, Entry] = {}
            sent = sent_bytes = skipped = 0
            at = now_iso()
            dirty = False
            for relpath, seen in sorted(present.items()):
                if state.seen(relpath) == seen:
                    skipped += 1
                    continue
                known = state.sha256(relpath)
                sha, seen_now, uploaded = self._upload(relpath, known)
                dirty = True
                state.record(relpath, sha, seen_now)
                if sha == known:
                    skipped += 1  # touched, same bytes: the index already says so
                    continue
                entries[relpath] = {
                    "sha256": sha,
                    "size": seen_now.size,
                    "at": at,
                    "by": self.worker,
                }
                if uploaded:
                    sent += 1
                    sent_bytes += seen_now.size
                else:
                    skipped += 1  # its object was already there (same bytes elsewhere)
            gone = (
                {rel: state.sha256(rel) for rel in state.files if rel not in present}
                if only is None
                else {}
            )
            if entries or gone:

                def apply(index: Index) -> None:
                    set_files(index, entries)
                    tombstone(index, gone, self.worker, at)

                update_blob(self.store, self.contract, INDEX_BLOB, change(apply))
            for relpath in gone:
                state.forget(relpath)
            if dirty or gone:
                state.save()
            return SyncCounts(files=sent, bytes=sent_bytes, removed=len(gone), skipped=skipped)

    def _upload(self, relpath: str, known: str | None) -> tuple[str, Seen, bool]:
        """Hash the file from one fd and, unless `known` or already in S3, upload from it.

        Returns (sha256, the file as stat saw it, whether it was uploaded).
        The fd sees one version of a file written by rename; a file changed
        in place while it was read is refused (its object is removed).
        """
        path = self._local_path(relpath)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            raise HandoverError(f"{path}: cannot read evidence file: {exc.strerror}") from None
        check = os.dup(fd)  # boto3 closes the file it uploads: this fd outlives it for fstat
        try:
            return self._hash_and_send(path, fd, check, known)
        finally:
            os.close(check)

    def _hash_and_send(
        self, path: Path, fd: int, check: int, known: str | None
    ) -> tuple[str, Seen, bool]:
        with os.fdopen(fd, "rb") as handle:
            before = os.fstat(fd)
            digest = hashlib.sha256()
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                digest.update(chunk)
            sha = digest.hexdigest()
            seen = Seen.of(before)
            if sha == known:
                return sha, seen, False
            key = self._object_key(sha)
            uploaded = False
            if self._head_size(key, path) != before.st_size:
                from boto3.s3.transfer import TransferConfig

                handle.seek(0)
                config = TransferConfig(
                    multipart_threshold=PART_SIZE,
                    multipart_chunksize=PART_SIZE,
                    max_concurrency=UPLOAD_THREADS,
                )
                with self._s3("upload", key, path):
                    self.client.upload_fileobj(handle, self.bucket, key, Config=config)
                uploaded = True
            after = os.fstat(check)
            if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
                if uploaded:
                    with contextlib.suppress(Exception):
                        self.client.delete_object(Bucket=self.bucket, Key=key)
                raise HandoverError(
                    f"{path}: changed while it was being uploaded (written in place rather "
                    "than replaced by rename?): not recorded, push again"
                )
            return sha, seen, uploaded

    def _head_size(self, key: str, path: Path) -> int | None:
        """The object's size, None when there is none."""
        import botocore.exceptions

        with self._s3("head", key, path):
            try:
                answer = self.client.head_object(Bucket=self.bucket, Key=key)
            except botocore.exceptions.ClientError as exc:
                if s3_error_code(exc) in MISSING_OBJECT_CODES:
                    return None
                raise
        return int(answer["ContentLength"])

    # -- pull ---------------------------------------------------------------------------

    def pull(self, under: Sequence[str] = ("",)) -> SyncCounts:
        """Bring the files of the index under `under` here; remove those erased elsewhere.

        Each download goes to a temporary file beside the target, checked
        against the index's SHA-256 and size while it streams, then renamed:
        a wrong or missing object raises HandoverError naming the file and
        the key, and leaves nothing. Local files the index does not name
        (this worker's unpushed files) are left alone; a local file the index
        names with other bytes is replaced by the index's version.
        """
        prefixes = normalized_prefixes(under)
        index = load_index(self.store.read_blob(self.contract, INDEX_BLOB))
        got = got_bytes = removed = skipped = 0
        with self._sync_lock():
            state = SyncState(self.root)
            try:
                for relpath, entry in sorted(index["files"].items()):
                    if not is_under(relpath, prefixes) or is_excluded(checked_relpath(relpath)):
                        continue
                    if self._up_to_date(relpath, entry, state):
                        skipped += 1
                        continue
                    seen = self._download(relpath, entry)
                    state.record(relpath, str(entry["sha256"]), seen)
                    got += 1
                    got_bytes += seen.size
                for relpath in sorted(index["erased"]):
                    if not is_under(relpath, prefixes) or is_excluded(checked_relpath(relpath)):
                        continue
                    path = self._local_path(relpath)
                    with contextlib.suppress(FileNotFoundError):
                        if stat.S_ISREG(os.lstat(path).st_mode):
                            path.unlink()
                            removed += 1
                    state.forget(relpath)
            finally:
                state.save()  # what was fetched before a failure is recorded as fetched
        return SyncCounts(files=got + removed, bytes=got_bytes, removed=removed, skipped=skipped)

    def _up_to_date(self, relpath: str, entry: Entry, state: SyncState) -> bool:
        """True when the local file holds the entry's bytes (recorded in `state` if so)."""
        path = self._local_path(relpath)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False
        if not stat.S_ISREG(st.st_mode):
            raise HandoverError(
                f"{path}: not a regular file, while the evidence index {self.where} holds a "
                "file there: move it away"
            )
        seen = Seen.of(st)
        sha = str(entry["sha256"])
        if state.seen(relpath) == seen and state.sha256(relpath) == sha:
            return True
        if st.st_size != int(entry["size"]) or _sha256_of(path) != sha:
            return False
        state.record(relpath, sha, seen)
        return True

    def _download(self, relpath: str, entry: Entry) -> Seen:
        """Fetch the entry's object to `relpath` (temp, verify while streaming, rename)."""
        path = self._local_path(relpath)
        sha, size = str(entry["sha256"]), int(entry["size"])
        key = self._object_key(sha)
        ensure_private_dir(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                digest = hashlib.sha256()
                count = 0
                with self._s3("download", key, path):
                    body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
                    try:
                        for chunk in iter(lambda: body.read(CHUNK), b""):
                            digest.update(chunk)
                            out.write(chunk)
                            count += len(chunk)
                    finally:
                        body.close()
                if digest.hexdigest() != sha or count != size:
                    raise HandoverError(
                        f"{path}: the object s3://{self.bucket}/{key} does not hold the bytes "
                        f"the evidence index names ({count} bytes, sha256 "
                        f"{digest.hexdigest()[:16]}..., expected {size} bytes): not written"
                    )
                out.flush()
                os.chmod(tmp, PRIVATE_FILE_MODE)
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return Seen.of(os.lstat(path))

    # -- evict --------------------------------------------------------------------------

    def evict(self, relpaths: Sequence[str]) -> SyncCounts:
        """Remove the local copies under `relpaths` that the index holds as they are here.

        Not a deletion: nothing is tombstoned, and the files leave this
        worker's sync state so the next push does not read their absence as
        one. A file not pushed (absent from the index, or other bytes) is
        kept and counted in `skipped`.
        """
        prefixes = normalized_prefixes(relpaths)
        index = load_index(self.store.read_blob(self.contract, INDEX_BLOB))
        removed = freed = kept = 0
        with self._sync_lock():
            state = SyncState(self.root)
            found: dict[str, Seen] = {}
            for prefix in prefixes:
                found.update(walk(self.root, prefix))
            for relpath, seen in sorted(found.items()):
                entry = index["files"].get(relpath)
                if entry is None:
                    kept += 1
                    continue
                path = self._local_path(relpath)
                fresh = state.seen(relpath) == seen
                sha = state.sha256(relpath) if fresh else _sha256_of(path)
                if sha != entry.get("sha256"):
                    kept += 1
                    continue
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                state.forget(relpath)
                removed += 1
                freed += seen.size
            if removed:
                state.save()
        self._kept_unpushed = self._kept_unpushed or kept > 0
        return SyncCounts(files=removed, bytes=freed, removed=removed, skipped=kept)

    # -- holders ------------------------------------------------------------------------

    def holders(self) -> dict[str, dict[str, Any]]:
        """The workers that may still keep local copies (the index's `holders`)."""
        index = load_index(self.store.read_blob(self.contract, INDEX_BLOB))
        return {str(worker): dict(entry) for worker, entry in index["holders"].items()}

    @contextlib.contextmanager
    def in_use(self, run: str, evict: Sequence[str] = ()) -> Iterator[None]:
        """Use the local folder for the block: a shared flock, and this worker a holder.

        At the end, if no other run of this contract on this machine holds
        the folder (the exclusive flock is free at once), the local copies
        under `evict` are removed (`evict`), and then, if no evict of this
        process kept unpushed files, this worker leaves `holders`. Another
        run still at work keeps them (it may read them) and the entry. A
        process killed inside the block leaves its entry: it may have left
        copies.
        """
        ensure_private_dir(self.root)
        fd = os.open(
            self.root / IN_USE_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, PRIVATE_FILE_MODE
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            since = now_iso()
            update_blob(
                self.store,
                self.contract,
                INDEX_BLOB,
                change(lambda index: set_holder(index, self.worker, run, since)),
            )
            try:
                yield
            finally:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    alone = True
                except BlockingIOError:
                    alone = False
                if alone and evict:
                    self.evict(evict)
                if alone and not self._kept_unpushed:
                    update_blob(
                        self.store,
                        self.contract,
                        INDEX_BLOB,
                        change(lambda index: drop_holder(index, self.worker)),
                    )
        finally:
            os.close(fd)

    # -- erase --------------------------------------------------------------------------

    def erase(self, relpaths: Sequence[str]) -> ErasedObjects:
        """Tombstone every file under `relpaths`, then delete every unreferenced object.

        Unreferenced: not named by a file the index keeps, which includes the
        objects of the files just tombstoned and orphans a killed push
        uploaded without reaching the index. Every version and delete marker
        of such a key is deleted; a key S3 refused, or still listed after,
        is in `failed`, never counted as deleted. Run it while no push of the
        contract is under way (a push's new objects are not yet referenced).
        """
        prefixes = normalized_prefixes(relpaths)
        at = now_iso()

        def apply(index: Index) -> None:
            tombstone_under(index, prefixes, self.worker, at)

        stored = update_blob(self.store, self.contract, INDEX_BLOB, change(apply))
        keep = referenced(load_index(stored))
        objects = self.base + "objects/"
        listed = self._versions(objects)
        doomed = {key: vs for key, vs in listed.items() if key[len(objects) :] not in keep}
        kept = sum(1 for key, vs in listed.items() if key not in doomed and vs[1])
        refused: dict[str, str] = {}
        batch: list[dict[str, str]] = [
            {"Key": key, "VersionId": version} for key, vs in doomed.items() for version in vs[0]
        ]
        for start in range(0, len(batch), DELETE_BATCH):
            with self._s3("delete", objects):
                answer = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": batch[start : start + DELETE_BATCH], "Quiet": True},  # type: ignore[typeddict-item]
                )
            for error in answer.get("Errors", []):
                refused.setdefault(str(error.get("Key", "")), str(error.get("Code", "refused")))
        after = self._versions(objects)
        failed = []
        deleted = 0
        for key, (_, had_data) in sorted(doomed.items()):
            if key in refused:
                failed.append(f"{key} ({refused[key]})")
            elif key in after:
                failed.append(f"{key} (still listed after deletion)")
            elif had_data:
                deleted += 1
        return ErasedObjects(deleted=deleted, kept=kept, failed=tuple(failed), where=self.where)

    def _versions(self, prefix: str) -> dict[str, tuple[list[str], bool]]:
        """key -> (every version id and delete marker id, whether a version holds data)."""
        found: dict[str, tuple[list[str], bool]] = {}
        with self._s3("list", prefix):
            pages = self.client.get_paginator("list_object_versions").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for version in page.get("Versions", []):
                    ids, _ = found.get(version["Key"], ([], False))
                    found[version["Key"]] = ([*ids, version["VersionId"]], True)
                for marker in page.get("DeleteMarkers", []):
                    ids, data = found.get(marker["Key"], ([], False))
                    found[marker["Key"]] = ([*ids, marker["VersionId"]], data)
        return found

    # -- helpers ------------------------------------------------------------------------

    def _object_key(self, sha: str) -> str:
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise HandoverError(f"{INDEX_BLOB}: {sha!r} is not a SHA-256")
        return f"{self.base}objects/{sha}"

    def _local_path(self, relpath: str) -> Path:
        """`root/relpath`, refused if a folder on the way is a symlink (never followed)."""
        checked_relpath(relpath)
        current = self.root
        for part in relpath.split("/")[:-1]:
            current = current / part
            with contextlib.suppress(FileNotFoundError):
                if not stat.S_ISDIR(os.lstat(current).st_mode):
                    raise HandoverError(
                        f"{current}: not a folder (a symlink?): evidence is never written "
                        "through one"
                    )
        return current / relpath.split("/")[-1]

    @contextlib.contextmanager
    def _sync_lock(self) -> Iterator[None]:
        """This machine's pushes, pulls and evictions of the contract, one at a time."""
        ensure_private_dir(self.root)
        fd = os.open(
            self.root / SYNC_LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, PRIVATE_FILE_MODE
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _s3(self, operation: str, key: str, path: Path | None = None) -> Iterator[None]:
        """S3 errors as one line: the file, the operation, the endpoint, the bucket and key."""
        try:
            with s3_errors(f"s3://{self.bucket}/{key}"):
                yield
        except ConnectorError as exc:
            about = f"{path}: " if path is not None else ""
            raise type(exc)(
                f"{about}evidence {operation} failed (endpoint {self._endpoint()}): {exc}"
            ) from exc

    def _endpoint(self) -> str:
        parts = urlsplit(str(getattr(self.client.meta, "endpoint_url", "") or ""))
        if not parts.hostname:
            return "?"
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}"


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def default_worker(root: Path) -> str:
    """This worker's name as holder of copies: its host and the folder holding its contracts.

    What an operator needs to find copies a killed run left: the machine and
    the path. Two workers of one machine have two folders, hence two names.
    """
    return f"{socket.gethostname()}:{Path(root).absolute().parent}"


def evidence_mirror(
    contract: str, root: Path, store: ContractStore | None = None
) -> EvidenceMirror | None:
    """The mirror HANDOVER_EVIDENCE_URL names; None when unset (the local folder is the evidence).

    `file:` URLs (a shared folder) are not handled here: None as well.
    """
    value = os.environ.get(EVIDENCE_URL_ENV, "").strip()
    if not value or value.lower().startswith("file:"):
        return None
    if not value.lower().startswith("s3://"):
        scheme = value.split(":", 1)[0] if ":" in value else value[:20]
        raise UsageError(
            f"{EVIDENCE_URL_ENV}: unsupported scheme {scheme!r}: use s3://bucket/prefix or file:"
        )
    try:
        bucket, prefix = parse_s3_url("s3://" + value[len("s3://") :])
    except UsageError as exc:
        raise UsageError(f"{EVIDENCE_URL_ENV}: {exc}") from None
    if store is None:
        from handover.checklist.store import open_contract_store

        store = open_contract_store()
    return EvidenceMirror(
        contract, root, store, s3_client(None), bucket, prefix, default_worker(root)
    )


def refresh_for_reading(contract: str, root: Path, under: Sequence[str]) -> None:
    """Bring this machine's copy of `under` up to the evidence store before reading it.

    For the commands that read a contract's records outside a run (`handover
    acceptance`, `report`, `status`): on an operator's machine the folder is
    whatever an earlier command left, and a stale exit state would make them
    say less (or other) than what the workers did. Nothing without a store.
    """
    mirror = evidence_mirror(contract, root)
    if mirror is not None:
        mirror.pull(under=under)
