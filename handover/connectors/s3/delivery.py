"""Bundles in S3: written with streaming multipart uploads, read back, linked, copied.

`S3Target.open_write(relpath)` is a BundleTarget stream: bytes are cut into
parts (8 MiB, growing for very large files so the 10,000-part limit is never
reached), each part is uploaded with a checksum (botocore's CRC32, or
Content-MD5 when the client sends checksums only when required) by a small
pool while the writer goes on, and at most `max_inflight_parts` parts of
8 MiB (the same bytes in fewer, larger parts later) wait in memory. The
upload is completed only when the block ends without error; on any error it
is aborted, so no object appears under the final name. Files smaller than one
part go up with a single PUT. A crash of the whole process (or an endpoint
that dies before the abort reaches it) leaves an *incomplete multipart
upload*, which is invisible to GET and LIST; `abort_incomplete_uploads`
clears them, and `install_lifecycle_rule` (s3_backup) lets S3 do it after a day.

The bundle writer writes the outer SHA256SUMS and its signature last, so a
prefix without them is visibly incomplete; `copy_bundle` keeps that order.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO, cast

from handover.connectors.s3.client import (
    S3Client,
    S3SettingsLike,
    check_bucket,
    is_aws_endpoint,
    join_key,
    normalize_prefix,
    parse_s3_url,
    s3_client,
)
from handover.connectors.s3.errors import (
    MISSING_OBJECT_CODES,
    raise_s3_error,
    s3_error_code,
    s3_errors,
)
from handover.errors import ConnectorError, UsageError

__all__ = [
    "S3BundleSource",
    "S3Target",
    "abort_incomplete_uploads",
    "copy_bundle",
    "presign_bundle",
    "s3_bundle_source_from_url",
    "s3_target_from_url",
]

log = logging.getLogger(__name__)

MiB = 1 << 20
PART_SIZE = 8 * MiB  # like s3transfer; parts grow past 1,000 (see part_size_for)
# Parts in memory at most (32 MiB). benchmarks/s3.py against moto, same hour: with 8 the
# delivery was 0.98x its anchor (upload_file) and peaked at 154 MiB in a fresh process, with
# 4 1.02x and 121 MiB; an exit delivering by links does it on top of what the exit holds.
MAX_INFLIGHT_PARTS = 4
UPLOAD_WORKERS = 8
AWS_MAX_PRESIGN_DAYS = 7
LAST_FILES = ("SHA256SUMS", "SHA256SUMS.sig")  # written last: their presence means complete
READ_CHUNK = 1 * MiB


def part_size_for(part_number: int, base: int = PART_SIZE) -> int:
    """Size of part `part_number` (1-based): doubles every 1,000 parts (10,000 parts > 5 TiB)."""
    return base << min((part_number - 1) // 1000, 8)


def _md5_b64(data: bytes | bytearray) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


class _MultipartWriter(io.RawIOBase):
    """A writable stream that uploads `bucket/key` in parts; see the module docstring."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        key: str,
        extra: dict[str, Any],
        part_size: int,
        max_inflight_parts: int,
        pool: ThreadPoolExecutor,
    ) -> None:
        super().__init__()
        self.client = client
        self.bucket = bucket
        self.key = key
        self.where = f"s3://{bucket}/{key}"
        self.extra = extra
        self.base_part_size = part_size
        self.pool = pool
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.part_number = 0
        self.parts: list[Future[dict[str, Any]]] = []
        self.budget = max_inflight_parts * part_size  # bytes of parts in memory
        self.inflight = 0
        self.room = threading.Condition()
        self.size = 0
        self.finished = False
        config = getattr(getattr(client, "meta", None), "config", None)
        mode = getattr(config, "request_checksum_calculation", None)
        self.md5 = mode == "when_required"

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.finished:
            raise ValueError(f"{self.where}: write after close")
        view = memoryview(data).cast("B")
        self.buffer += view
        self.size += len(view)
        if len(self.buffer) >= part_size_for(self.part_number + 1, self.base_part_size):
            self._send_part()
        return len(view)

    def _check_parts(self) -> None:
        for future in self.parts:
            if future.done() and future.exception() is not None:
                future.result()

    def _send_part(self) -> None:
        self._check_parts()
        if self.upload_id is None:
            with s3_errors(self.where):
                created = self.client.create_multipart_upload(
                    Bucket=self.bucket, Key=self.key, **self.extra, **self._algorithm()
                )
            self.upload_id = created["UploadId"]
        size = len(self.buffer)
        with self.room:  # back-pressure: parts in memory stay within the budget
            while self.inflight and self.inflight + size > self.budget:
                self.room.wait()
            self.inflight += size
        data, self.buffer = self.buffer, bytearray()  # handed over, never copied
        self.part_number += 1
        try:
            future = self.pool.submit(self._upload_part, self.part_number, data)
        except BaseException:
            self._release(size)
            raise
        future.add_done_callback(lambda _: self._release(size))
        self.parts.append(future)

    def _algorithm(self) -> dict[str, Any]:
        """As s3transfer does: a CRC32 per part, computed by botocore, checked by S3."""
        return {} if self.md5 else {"ChecksumAlgorithm": "CRC32"}

    def _checksum(self, data: bytes | bytearray) -> dict[str, Any]:
        """The checksum arguments of a part or a single PUT.

        By default botocore computes a CRC32 of the body (ChecksumAlgorithm),
        which S3 verifies, and the multipart upload is created with the same
        algorithm, as s3transfer does. Servers that reject those headers get
        `request_checksum_calculation=when_required`, and then a Content-MD5,
        which every S3 implementation checks.
        """
        if self.md5:
            return {"ContentMD5": _md5_b64(data)}
        return self._algorithm()

    def _release(self, size: int) -> None:
        with self.room:
            self.inflight -= size
            self.room.notify_all()

    def _upload_part(self, number: int, data: bytearray) -> dict[str, Any]:
        assert self.upload_id is not None
        with s3_errors(f"{self.where} (part {number})"):
            response = self.client.upload_part(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=cast(bytes, data),  # botocore takes bytearray as it takes bytes
                **self._checksum(data),
            )
        part = {"PartNumber": number, "ETag": response["ETag"]}
        if response.get("ChecksumCRC32"):
            part["ChecksumCRC32"] = response["ChecksumCRC32"]
        return part

    def complete(self) -> None:
        """Upload what is left and make the object visible; abort and raise on failure."""
        self.finished = True
        try:
            if self.upload_id is None:
                body = bytes(self.buffer)
                self.buffer = bytearray()
                with s3_errors(self.where):
                    self.client.put_object(
                        Bucket=self.bucket,
                        Key=self.key,
                        Body=body,
                        **self._checksum(body),
                        **self.extra,
                    )
                return
            if self.buffer:
                self._send_part()
            parts = [future.result() for future in self.parts]
            with s3_errors(self.where):
                self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=self.key,
                    UploadId=self.upload_id,
                    MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
                )
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Drop the upload: pending parts are cancelled, the multipart upload aborted.

        When the endpoint is gone the abort cannot reach it either: the upload
        then stays listed as incomplete (never visible as an object).
        """
        self.finished = True
        self.buffer = bytearray()
        for future in self.parts:
            future.cancel()
        for future in self.parts:
            with contextlib.suppress(BaseException):
                future.result()
        if self.upload_id is None:
            return
        try:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
            )
        except Exception as exc:
            log.warning(
                "%s: could not abort multipart upload %s (%s); it stays incomplete "
                "and invisible until aborted",
                self.where,
                self.upload_id,
                type(exc).__name__,
            )


class S3Target:
    """A BundleTarget on `s3://bucket/prefix`: one object per bundle file.

    `sse` is "AES256" or "aws:kms" (with `kms_key_id`), or None for the
    bucket's default encryption.
    """

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        prefix: str,
        sse: str | None = None,
        *,
        kms_key_id: str | None = None,
        part_size: int = PART_SIZE,
        max_inflight_parts: int = MAX_INFLIGHT_PARTS,
        workers: int = UPLOAD_WORKERS,
    ) -> None:
        check_bucket(bucket, f"s3://{bucket}")
        if part_size < 5 * MiB:
            raise UsageError(f"s3://{bucket}/{prefix}: part size must be at least 5 MiB")
        if sse not in (None, "AES256", "aws:kms", "aws:kms:dsse"):
            raise UsageError(f"s3://{bucket}/{prefix}: sse must be AES256 or aws:kms, not {sse!r}")
        self.client = client
        self.bucket = bucket
        self.prefix = normalize_prefix(prefix)
        self.extra: dict[str, Any] = {}
        if sse:
            self.extra["ServerSideEncryption"] = sse
        if kms_key_id:
            self.extra["SSEKMSKeyId"] = kms_key_id
        self.part_size = part_size
        self.max_inflight_parts = max_inflight_parts
        self.workers = workers

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @contextlib.contextmanager
    def open_write(self, relpath: str) -> Iterator[BinaryIO]:
        """Yield a stream; the object exists only if the block ends without error."""
        key = join_key(self.prefix, relpath)
        with ThreadPoolExecutor(self.workers, thread_name_prefix="s3-put") as pool:
            writer = _MultipartWriter(
                self.client,
                self.bucket,
                key,
                self.extra,
                self.part_size,
                self.max_inflight_parts,
                pool,
            )
            try:
                yield cast(BinaryIO, writer)
            except BaseException:
                writer.abort()
                raise
            writer.complete()

    def remove_partials(self) -> list[str]:
        """Abort multipart uploads a crashed run left under the prefix (BundleWriter calls it)."""
        return abort_incomplete_uploads(self.client, self.bucket, self.prefix)

    def exists(self, relpath: str) -> bool:
        key = join_key(self.prefix, relpath)
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if s3_error_code(exc) in MISSING_OBJECT_CODES:
                return False
            raise_s3_error(exc, f"s3://{self.bucket}/{key}")
        return True


class _BodyReader(io.RawIOBase):
    """A botocore StreamingBody as a raw stream whose errors are ConnectorErrors."""

    def __init__(self, body: Any, where: str) -> None:
        super().__init__()
        self.body = body
        self.where = where

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        with s3_errors(self.where):
            data = self.body.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.body.close()
        super().close()


def _list_keys(client: S3Client, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    with s3_errors(f"s3://{bucket}/{prefix}"):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            yield from cast(list[dict[str, Any]], page.get("Contents", []))


class S3BundleSource:
    """A BundleSource on `s3://bucket/prefix`: lists and streams the bundle's objects."""

    def __init__(self, client: S3Client, bucket: str, prefix: str) -> None:
        check_bucket(bucket, f"s3://{bucket}")
        self.client = client
        self.bucket = bucket
        self.prefix = normalize_prefix(prefix)

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def list_files(self) -> Iterator[str]:
        for obj in _list_keys(self.client, self.bucket, self.prefix):
            rel = obj["Key"][len(self.prefix) :]
            if rel and not rel.endswith("/"):
                yield rel

    @contextlib.contextmanager
    def open_read(self, relpath: str) -> Iterator[BinaryIO]:
        key = join_key(self.prefix, relpath)
        where = f"s3://{self.bucket}/{key}"
        with s3_errors(where):
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        reader = io.BufferedReader(_BodyReader(body, where), READ_CHUNK)
        with reader:
            yield cast(BinaryIO, reader)


def s3_target_from_url(
    url: str,
    *,
    sse: str | None = None,
    settings: S3SettingsLike | None = None,
    client: S3Client | None = None,
) -> S3Target:
    """An S3Target for `s3://bucket/prefix` (boto3's standard configuration by default)."""
    bucket, prefix = parse_s3_url(url)
    return S3Target(client or s3_client(settings), bucket, prefix, sse)


def s3_bundle_source_from_url(
    url: str, *, settings: S3SettingsLike | None = None, client: S3Client | None = None
) -> S3BundleSource:
    """An S3BundleSource for `s3://bucket/prefix`, so `handover verify s3://...` works."""
    bucket, prefix = parse_s3_url(url)
    return S3BundleSource(client or s3_client(settings), bucket, prefix)


def _sigv4_client(client: S3Client) -> S3Client:
    """A twin of `client` that presigns with SigV4 (X-Amz-Expires), whatever its config.

    botocore presigns with the legacy query signature (no expiry above 7 days
    check, refused by recent regions) unless SigV4 was set explicitly.
    """
    import boto3
    from botocore.config import Config

    signer = client._request_signer  # type: ignore[attr-defined]
    credentials = signer._credentials
    if credentials is None:
        raise ConnectorError("no credentials to sign links with", host="s3")
    frozen = credentials.get_frozen_credentials()
    session = boto3.session.Session(
        aws_access_key_id=frozen.access_key,
        aws_secret_access_key=frozen.secret_key,
        aws_session_token=frozen.token,
        region_name=client.meta.region_name,
    )
    config = client.meta.config.merge(Config(signature_version="s3v4"))
    return session.client(  # type: ignore[no-any-return]
        "s3", endpoint_url=client.meta.endpoint_url, config=config
    )


def presign_bundle(client: S3Client, bucket: str, prefix: str, expiry_days: int) -> dict[str, str]:
    """SigV4 presigned GET links for every file of the bundle, by relative path.

    AWS refuses SigV4 links longer than 7 days: asked for more on AWS, the
    links get 7 days and a warning is logged (re-issue them during the
    retrieval period). Other endpoints get what is asked. Links made with
    temporary credentials (STS, instance roles) die with those credentials.
    Raises ConnectorError when the prefix holds no file.
    """
    if expiry_days < 1:
        raise UsageError(f"presign s3://{bucket}/{prefix}: expiry_days must be ≥ 1")
    days = expiry_days
    if days > AWS_MAX_PRESIGN_DAYS and is_aws_endpoint(client):
        log.warning(
            "s3://%s/%s: AWS allows presigned links of at most %d days, not %d: "
            "links expire after %d days; re-issue them during the retrieval period",
            bucket,
            prefix,
            AWS_MAX_PRESIGN_DAYS,
            expiry_days,
            AWS_MAX_PRESIGN_DAYS,
        )
        days = AWS_MAX_PRESIGN_DAYS
    source = S3BundleSource(client, bucket, prefix)
    signer = _sigv4_client(client)
    links: dict[str, str] = {}
    for rel in source.list_files():
        with s3_errors(f"s3://{bucket}/{source.prefix}{rel}"):
            links[rel] = signer.generate_presigned_url(
                "get_object",
                Params={"Bucket": bucket, "Key": join_key(source.prefix, rel)},
                ExpiresIn=days * 86400,
            )
    if not links:
        raise ConnectorError("no bundle file under this prefix", host=source.describe())
    return links


def _copy_order(rel: str) -> tuple[int, str]:
    return (LAST_FILES.index(rel) + 1 if rel in LAST_FILES else 0, rel)


def copy_bundle(
    client: S3Client,
    src_bucket: str,
    src_prefix: str,
    dst_bucket: str,
    dst_prefix: str,
) -> list[str]:
    """Server-side copy of a bundle into another bucket (the client's), SHA256SUMS last.

    Objects over 5 GiB are copied in parts by boto3's managed copy. The
    credentials of `client` must read the source and write the destination
    (a bucket policy of the client's bucket usually grants it). Returns the
    copied relative paths.
    """
    from boto3.s3.transfer import TransferConfig

    check_bucket(dst_bucket, f"s3://{dst_bucket}")
    src = S3BundleSource(client, src_bucket, src_prefix)
    dst_prefix = normalize_prefix(dst_prefix)
    files = sorted(src.list_files(), key=_copy_order)
    if not files:
        raise ConnectorError("no bundle file under this prefix", host=src.describe())
    config = TransferConfig(multipart_threshold=1 << 30, multipart_chunksize=256 * MiB)
    # The copy gets a checksum of its own (a multipart original's composite one does not
    # carry over), unless the endpoint wants checksums only when required.
    mode = getattr(client.meta.config, "request_checksum_calculation", None)
    extra = {} if mode == "when_required" else {"ChecksumAlgorithm": "CRC32"}
    for rel in files:
        with s3_errors(f"s3://{dst_bucket}/{dst_prefix}{rel}"):
            client.copy(
                {"Bucket": src_bucket, "Key": join_key(src.prefix, rel)},
                dst_bucket,
                join_key(dst_prefix, rel),
                ExtraArgs=extra,
                Config=config,
            )
    return files


def abort_incomplete_uploads(client: S3Client, bucket: str, prefix: str) -> list[str]:
    """Abort every multipart upload left under the prefix (after a crash); returns their keys."""
    prefix = normalize_prefix(prefix)
    aborted: list[str] = []
    with s3_errors(f"s3://{bucket}/{prefix}"):
        pages = client.get_paginator("list_multipart_uploads").paginate(
            Bucket=bucket, Prefix=prefix
        )
        for page in pages:
            for upload in page.get("Uploads", []):
                client.abort_multipart_upload(
                    Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                aborted.append(upload["Key"])
    return aborted
