"""Objects under an S3 prefix, produced as one tar stream (a VolumeSource).

No remote `tar` exists in S3, so the stream is built here: a thread lists the
prefix page by page, objects are fetched by a bounded pool of threads (small
ones whole and ahead of time, large ones as parallel ranged GETs), and the
reader's thread writes tar headers and bodies in listing order. At most
`max_inflight_bytes` of object data are held at any time, whatever the object
sizes; nothing touches the disk.

Member paths are the keys relative to the prefix (PAX headers carry long and
non-ASCII names). A key component that tar cannot carry safely ('', '.', '..')
is percent-encoded, and the real key is always in the member's extras. With
`versions="all"` each version is a member `<path>@<version id>`; delete
markers have no content and are left out.

Each GET carries `IfMatch` (latest) or `VersionId` (all versions), so an
object rewritten during the export fails the volume instead of mixing two
versions in one member.
"""

from __future__ import annotations

import contextlib
import io
import queue
import tarfile
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, Literal, cast

from handover.bundle.members import pack_values, unpack_values
from handover.connectors.s3.client import (
    S3Client,
    S3SettingsLike,
    check_bucket,
    normalize_prefix,
    parse_s3_url,
    s3_client,
)
from handover.connectors.s3.errors import s3_errors
from handover.errors import ConnectorError, UsageError

__all__ = ["S3PrefixSource", "s3_source_from_url"]

MiB = 1 << 20
SMALL_OBJECT_MAX = 4 * MiB  # fetched with one GET
RANGE_SIZE = 4 * MiB  # larger objects: ranged GETs of this size, several in flight
# Object data fetched but not yet consumed. The window only has to cover the reader's rate
# times a GET's latency (100 MB/s x 0.05 s is 5 MB), and the reader, a seal sharing the CPU
# with other volumes, is the slower side: the window stays full for the whole export. Held
# at most: the window, one piece over it and the piece being read, 16 MiB (it was 80 with
# 48 MiB and ranges of 16, 48 with 32 and ranges of 8, 24 with 16 and ranges of 4: most of
# the plateau of a 10 GiB exit's exports, with three SSH volumes sealing beside it).
# benchmarks/s3.py against moto, same morning: seal 0.81x the anchor with 8 MiB, 0.72-0.74x
# with 16; fresh-process peak 101 MiB against 114. Against a real endpoint 8 MiB in flight
# at 50 ms a GET is ~160 MiB/s, more than one volume's share of an exit's cores.
MAX_INFLIGHT_BYTES = 8 * MiB
MAX_INFLIGHT_REQUESTS = 48  # small objects fetched ahead
WORKERS = 16
# Entries listed ahead of the downloads: two pages of 1,000 keep 48 requests fed, and
# each entry waiting costs ~0.5 KB (20,000 ahead held ~8 MiB of a 100,000-file exit).
LISTING_QUEUE = 2_000
BLOCK = 512
READ_CHUNK = 1 << 20
_END_OF_ARCHIVE = bytes(2 * BLOCK)


@dataclass(frozen=True)
class _Entry:
    key: str
    size: int
    etag: str
    last_modified: datetime
    storage_class: str
    version_id: str | None = None
    is_latest: bool = True


# The facts kept per member (its `extra` in the manifest), in this order.
_LATEST_FACTS = ("s3_key", "etag", "last_modified", "storage_class")
_VERSION_FACTS = (*_LATEST_FACTS, "version_id", "is_latest")


class _MemberFacts(Mapping[str, dict[str, str]]):
    """{member path: its facts}, each kept packed (`pack_values`) and unpacked when read.

    Why: as a dict of str per object they cost 370-510 bytes; an export of
    a million objects held them all until the volume's members were packed.
    """

    def __init__(self, keys: tuple[str, ...]) -> None:
        self._keys = keys
        self._packed: dict[str, bytes] = {}

    def add(self, path: str, values: tuple[str, ...]) -> None:
        self._packed[path] = pack_values(values)

    def __getitem__(self, path: str) -> dict[str, str]:
        values = unpack_values(self._packed[path], len(self._keys))
        return dict(zip(self._keys, values, strict=True))

    def __iter__(self) -> Iterator[str]:
        return iter(self._packed)

    def __len__(self) -> int:
        return len(self._packed)


@dataclass(frozen=True)
class _Piece:
    entry: _Entry
    index: int  # position of the entry in the listing
    offset: int
    length: int
    last: bool  # last piece of its entry


def _safe_path(rel: str) -> str:
    """A member path from a relative key: components tar would drop or refuse are encoded."""
    encoded = {"": "%2F", ".": "%2E", "..": "%2E%2E"}
    return "/".join(encoded.get(part, part) for part in rel.split("/"))


def _read_exact(body: Any, length: int) -> tuple[bytearray, int]:
    """Read a response body into one preallocated buffer: no chunk list, no join copy.

    Returns the buffer and the count read; a body longer than `length` counts as
    longer so the caller sees the mismatch.
    """
    buffer = bytearray(length)
    view = memoryview(buffer)
    got = 0
    while got < length:
        n = body.readinto(view[got : got + READ_CHUNK])
        if not n:
            break
        got += n
    if got == length and body.read(1):
        got += 1
    return buffer, got


class _TarStream(io.RawIOBase):
    """A readable stream over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes | bytearray | memoryview]) -> None:
        super().__init__()
        self._chunks = chunks
        self._current = memoryview(b"")
        self._pos = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        while self._pos >= len(self._current):
            if self._done:
                return False
            chunk = next(self._chunks, None)
            if chunk is None:
                self._done = True
                self._current = memoryview(b"")
                return False
            self._current = memoryview(chunk)
            self._pos = 0
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._fill():
            return 0
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self._current) - self._pos)
        view[:n] = self._current[self._pos : self._pos + n]
        self._pos += n
        return n

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        if size == 0 or not self._fill():
            return b""
        n = min(size, len(self._current) - self._pos)
        data = bytes(self._current[self._pos : self._pos + n])
        self._pos += n
        return data

    def readall(self) -> bytes:
        parts = []
        while self._fill():
            parts.append(bytes(self._current[self._pos :]))
            self._pos = len(self._current)
        return b"".join(parts)


class S3PrefixSource:
    """Every object under `s3://bucket/prefix` as one tar stream (VolumeSource).

    `versions="latest"` takes the current objects; `"all"` every version
    (member `<path>@<version id>`). Errors (missing bucket, refused
    credentials, endpoint lost, object changed) are raised as ConnectorError
    subclasses naming the bucket or key, from the stream's `read()`.
    """

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        prefix: str,
        label: str,
        versions: Literal["latest", "all"] = "latest",
        *,
        max_inflight_bytes: int = MAX_INFLIGHT_BYTES,
        workers: int = WORKERS,
    ) -> None:
        check_bucket(bucket, f"s3://{bucket}")
        if versions not in ("latest", "all"):
            raise UsageError(f"s3://{bucket}/{prefix}: versions must be latest or all")
        self.client = client
        self.bucket = bucket
        self.prefix = normalize_prefix(prefix)
        self.versions = versions
        self.max_inflight_bytes = max_inflight_bytes
        self.workers = workers
        self._label = label
        self._extras = self._new_facts()

    @property
    def label(self) -> str:
        return self._label

    @property
    def origin(self) -> str:
        suffix = " (all versions)" if self.versions == "all" else ""
        return f"s3://{self.bucket}/{self.prefix}{suffix}"

    def member_extras(self) -> Mapping[str, dict[str, str]]:
        """ETag, last-modified, storage class, key and version id per member path.

        The facts of the last stream opened: a new stream starts new ones, so
        what was returned here stays as it was.
        """
        return self._extras

    def _new_facts(self) -> _MemberFacts:
        return _MemberFacts(_LATEST_FACTS if self.versions == "latest" else _VERSION_FACTS)

    # -- listing ---------------------------------------------------------------

    def _list(self) -> Iterator[_Entry]:
        with s3_errors(f"s3://{self.bucket}/{self.prefix}"):
            if self.versions == "latest":
                yield from self._list_latest()
            else:
                yield from self._list_versions()

    def _list_latest(self) -> Iterator[_Entry]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for obj in page.get("Contents", []):
                yield _Entry(
                    key=obj["Key"],
                    size=obj["Size"],
                    etag=obj.get("ETag", ""),
                    last_modified=obj["LastModified"],
                    storage_class=str(obj.get("StorageClass", "STANDARD")),
                )

    def _list_versions(self) -> Iterator[_Entry]:
        pages = self.client.get_paginator("list_object_versions").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for ver in page.get("Versions", []):
                yield _Entry(
                    key=ver["Key"],
                    size=ver["Size"],
                    etag=ver.get("ETag", ""),
                    last_modified=ver["LastModified"],
                    storage_class=str(ver.get("StorageClass", "STANDARD")),
                    version_id=ver.get("VersionId", "null"),
                    is_latest=bool(ver.get("IsLatest", False)),
                )

    def _lister(self, out: queue.Queue[Any], stop: threading.Event) -> None:
        """Thread body: list ahead of the downloads; ends with None or the exception."""
        try:
            for entry in self._list():
                while not stop.is_set():
                    try:
                        out.put(entry, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            out.put(None)
        except BaseException as exc:
            out.put(exc)

    # -- fetching --------------------------------------------------------------

    def _fetch(self, piece: _Piece) -> bytearray:
        entry = piece.entry
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": entry.key}
        if entry.version_id is not None:
            args["VersionId"] = entry.version_id
        elif entry.etag:
            args["IfMatch"] = entry.etag
        if piece.length != entry.size:
            args["Range"] = f"bytes={piece.offset}-{piece.offset + piece.length - 1}"
        where = f"s3://{self.bucket}/{entry.key}"
        with s3_errors(where):
            response = self.client.get_object(**args)
            data, got = _read_exact(response["Body"], piece.length)
        if got != piece.length:
            raise ConnectorError(
                f"got {got} bytes at offset {piece.offset}, expected {piece.length} "
                "(object changed or truncated)",
                host=where,
            )
        return data

    @staticmethod
    def _pieces(entries: Iterator[_Entry]) -> Iterator[_Piece]:
        for index, entry in enumerate(entries):
            if entry.size <= SMALL_OBJECT_MAX:
                yield _Piece(entry, index, 0, entry.size, True)
                continue
            for offset in range(0, entry.size, RANGE_SIZE):
                length = min(RANGE_SIZE, entry.size - offset)
                yield _Piece(entry, index, offset, length, offset + length >= entry.size)

    # -- tar -------------------------------------------------------------------

    def _member(self, entry: _Entry) -> tuple[str, bool] | None:
        """(member path, is a directory) for an entry, or None to leave it out."""
        rel = entry.key[len(self.prefix) :]
        if entry.key.endswith("/") and entry.size == 0:
            rel = rel.rstrip("/")
            if not rel:
                return None  # the prefix's own folder marker
            return _safe_path(rel) + "/", True
        path = _safe_path(rel)
        if entry.version_id is not None:
            path = f"{path}@{entry.version_id}"
        return path, False

    def _header(self, path: str, entry: _Entry, is_dir: bool) -> bytes:
        info = tarfile.TarInfo(path)
        info.size = 0 if is_dir else entry.size
        info.mtime = int(entry.last_modified.timestamp())
        info.mode = 0o755 if is_dir else 0o644
        info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
        info.uname = info.gname = ""
        return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")

    def _record(self, path: str, entry: _Entry) -> None:
        facts: tuple[str, ...] = (
            entry.key,
            entry.etag.strip('"'),
            entry.last_modified.isoformat(),
            entry.storage_class,
        )
        if entry.version_id is not None:
            facts += (entry.version_id, "true" if entry.is_latest else "false")
        self._extras.add(path, facts)

    def _chunks(
        self, pool: ThreadPoolExecutor, listed: Iterator[_Entry]
    ) -> Iterator[bytes | bytearray]:
        window: deque[tuple[_Piece, Future[bytearray] | None]] = deque()
        pieces = self._pieces(listed)
        inflight = 0
        exhausted = False
        headers: dict[int, tuple[str, bool] | None] = {}

        def submit() -> None:
            nonlocal inflight, exhausted
            while not exhausted and len(window) < MAX_INFLIGHT_REQUESTS:
                if window and inflight >= self.max_inflight_bytes:
                    return
                piece = next(pieces, None)
                if piece is None:
                    exhausted = True
                    return
                if piece.index not in headers:
                    headers[piece.index] = self._member(piece.entry)
                member = headers[piece.index]
                if member is None or member[1] or piece.length == 0:
                    window.append((piece, None))
                    continue
                window.append((piece, pool.submit(self._fetch, piece)))
                inflight += piece.length

        submit()
        while window:
            piece, future = window.popleft()
            member = headers[piece.index]
            if piece.offset == 0 and member is not None:
                path, is_dir = member
                self._record(path, piece.entry)
                yield self._header(path, piece.entry, is_dir)
            if future is not None:
                data = future.result()
                inflight -= piece.length
                submit()
                yield data
            else:
                submit()
            if piece.last:
                headers.pop(piece.index, None)
                if member is not None and not member[1] and piece.entry.size % BLOCK:
                    yield bytes(BLOCK - piece.entry.size % BLOCK)
        yield _END_OF_ARCHIVE

    @contextlib.contextmanager
    def open_tar(self) -> Iterator[BinaryIO]:
        """Yield the tar stream; errors surface from its read() as ConnectorError."""
        self._extras = self._new_facts()
        stop = threading.Event()
        listed_q: queue.Queue[Any] = queue.Queue(LISTING_QUEUE)
        lister = threading.Thread(
            target=self._lister, args=(listed_q, stop), name="s3-list", daemon=True
        )

        def listed() -> Iterator[_Entry]:
            while True:
                item = listed_q.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item

        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="s3-get")
        lister.start()
        stream = _TarStream(self._chunks(pool, listed()))
        try:
            yield cast(BinaryIO, stream)
        finally:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            with contextlib.suppress(queue.Empty):
                while True:  # unblock the lister if it waits on a full queue
                    listed_q.get_nowait()
            lister.join(5)


def s3_source_from_url(
    url: str,
    label: str,
    *,
    versions: Literal["latest", "all"] = "latest",
    settings: S3SettingsLike | None = None,
    client: S3Client | None = None,
) -> S3PrefixSource:
    """A VolumeSource for `s3://bucket/prefix`, with boto3's standard configuration by default."""
    bucket, prefix = parse_s3_url(url)
    return S3PrefixSource(client or s3_client(settings), bucket, prefix, label, versions)
