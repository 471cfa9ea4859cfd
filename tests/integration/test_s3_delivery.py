"""Bundles delivered to S3: multipart streaming, verify from S3, presigned links, copies,
and an endpoint that dies in the middle of an upload. All over HTTP to a moto server."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tarfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from handover.bundle.local import LocalPathSource
from handover.bundle.reader import verify_bundle
from handover.bundle.writer import BundleWriter
from handover.connectors.s3 import (
    S3BundleSource,
    S3PrefixSource,
    S3Target,
    copy_bundle,
    presign_bundle,
    s3_bundle_source_from_url,
    s3_target_from_url,
)
from handover.errors import ConnectorError, PermanentConnectorError
from tests.fixtures.s3 import (
    BundleKeys,
    TcpProxy,
    fill_bucket,
    make_client,
    open_with_standard_tools,
)

pytestmark = pytest.mark.integration
MiB = 1 << 20


def _tree(root: Path) -> Path:
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "contract.txt").write_text("clause 14\n")
    (root / "docs" / "large.bin").write_bytes(os.urandom(40 * MiB + 7))  # 3 parts
    return root


def _seal(target: Any, keys: BundleKeys, *sources: Any) -> None:
    writer = BundleWriter(target, [keys.recipient], keys.signing_key)
    for source in sources:
        writer.add_volume(source)
    writer.finish()


def _keys(client: Any, bucket: str, prefix: str = "") -> set[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def test_deliver_to_s3_then_verify_from_s3(
    s3_client: Any, s3_bucket: str, bundle_keys: BundleKeys, tmp_path: Path
) -> None:
    tree = _tree(tmp_path / "src")
    fill_bucket(s3_client, s3_bucket, {"client/a.txt": b"a\n", "client/b.txt": b"b\n"})
    target = S3Target(s3_client, s3_bucket, "bundles/acme", sse="AES256")
    _seal(
        target,
        bundle_keys,
        LocalPathSource("local-docs", tree, ["docs"]),
        S3PrefixSource(s3_client, s3_bucket, "client/", "client"),
    )
    keys = _keys(s3_client, s3_bucket, "bundles/acme/")
    assert {"bundles/acme/SHA256SUMS", "bundles/acme/SHA256SUMS.sig"} <= keys
    assert "bundles/acme/volumes/0001-local-docs.tar.age" in keys
    head = s3_client.head_object(
        Bucket=s3_bucket, Key="bundles/acme/volumes/0001-local-docs.tar.age"
    )
    assert head["ServerSideEncryption"] == "AES256"
    assert int(head["ETag"].strip('"').rsplit("-", 1)[1]) >= 5  # a multipart upload
    assert not s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads")

    source = S3BundleSource(s3_client, s3_bucket, "bundles/acme/")
    assert verify_bundle(source, [bundle_keys.identity]) == []
    assert verify_bundle(source) == []

    # A flipped byte in a volume is seen when verifying from S3.
    key = "bundles/acme/volumes/0002-client.tar.age"
    body = bytearray(s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read())
    body[len(body) // 2] ^= 1
    s3_client.put_object(Bucket=s3_bucket, Key=key, Body=bytes(body))
    problems = verify_bundle(source, [bundle_keys.identity])
    assert problems and any("0002-client" in p for p in problems)


def test_presigned_links_download_with_urllib_and_open_with_age(
    s3_client: Any, s3_bucket: str, bundle_keys: BundleKeys, tmp_path: Path
) -> None:
    _seal(
        S3Target(s3_client, s3_bucket, "out"),
        bundle_keys,
        LocalPathSource("docs", _tree(tmp_path / "src"), ["docs"]),
    )
    links = presign_bundle(s3_client, s3_bucket, "out", expiry_days=30)
    assert "SHA256SUMS" in links and "volumes/0001-docs.tar.age" in links
    assert all("X-Amz-Expires=2592000" in url for url in links.values())  # 30 days, not AWS
    download = tmp_path / "download"
    for rel, url in links.items():
        dest = download / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url) as response, dest.open("wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
    (folder,) = open_with_standard_tools(download, bundle_keys.key_file, tmp_path / "open")
    assert (folder / "docs" / "contract.txt").read_text() == "clause 14\n"
    assert (folder / "docs" / "large.bin").stat().st_size == 40 * MiB + 7


def test_presign_on_aws_is_capped_at_seven_days(caplog: pytest.LogCaptureFixture) -> None:
    import boto3

    client = boto3.session.Session(
        aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="x", region_name="eu-west-3"
    ).client("s3")
    assert client.meta.endpoint_url.endswith("amazonaws.com")

    class OneFile(S3BundleSource):
        def list_files(self) -> Iterator[str]:
            yield "SHA256SUMS"

    import handover.connectors.s3.delivery as delivery

    original = delivery.S3BundleSource
    delivery.S3BundleSource = OneFile  # type: ignore[misc]
    try:
        with caplog.at_level(logging.WARNING):
            links = presign_bundle(client, "acme-bundles", "exit", expiry_days=30)
    finally:
        delivery.S3BundleSource = original  # type: ignore[misc]
    assert "X-Amz-Expires=604800" in links["SHA256SUMS"]
    assert "at most 7 days" in caplog.text


def test_copy_into_the_clients_bucket(
    s3_client: Any, s3_bucket: str, bundle_keys: BundleKeys, tmp_path: Path
) -> None:
    _seal(
        S3Target(s3_client, s3_bucket, "exit"),
        bundle_keys,
        LocalPathSource("docs", _tree(tmp_path / "src"), ["docs"]),
    )
    s3_client.create_bucket(Bucket=f"{s3_bucket}-client")
    copied = copy_bundle(s3_client, s3_bucket, "exit", f"{s3_bucket}-client", "from-provider/")
    assert copied[-2:] == ["SHA256SUMS", "SHA256SUMS.sig"]
    source = S3BundleSource(s3_client, f"{s3_bucket}-client", "from-provider")
    assert verify_bundle(source, [bundle_keys.identity]) == []


class _CutAfter:
    """A VolumeSource (wrapping another) that cuts the endpoint after `limit` bytes of tar."""

    def __init__(self, inner: Any, proxy: TcpProxy, limit: int) -> None:
        self.inner, self.proxy, self.limit = inner, proxy, limit
        self.label, self.origin = inner.label, inner.origin

    def member_extras(self) -> dict[str, dict[str, str]]:
        return {}

    @contextlib.contextmanager
    def open_tar(self) -> Iterator[BinaryIO]:
        outer = self

        class Reader(io.RawIOBase):
            seen = 0

            def readable(self) -> bool:
                return True

            def readinto(self, buffer: Any) -> int:
                n: int = stream.readinto(buffer)
                self.seen += n
                if self.seen > outer.limit:
                    outer.proxy.cut()
                return n

        with self.inner.open_tar() as stream:
            yield Reader()  # type: ignore[misc]


def test_endpoint_stopped_mid_upload_leaves_nothing_complete_and_rerun_succeeds(
    s3_proxy: TcpProxy,
    s3_client: Any,
    s3_bucket: str,
    bundle_keys: BundleKeys,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tree = _tree(tmp_path / "src")
    client = make_client(s3_proxy.endpoint_url)
    target = S3Target(client, s3_bucket, "exit")
    source = _CutAfter(LocalPathSource("docs", tree, ["docs"]), s3_proxy, 36 * MiB)
    with pytest.raises(ConnectorError) as caught:
        _seal(target, bundle_keys, source)
    assert str(caught.value).startswith(f"s3://{s3_bucket}/exit/volumes/0001-docs.tar.age")
    assert "could not abort multipart upload" in caplog.text

    # Seen directly on moto: no object at all, the upload listed as incomplete.
    assert _keys(s3_client, s3_bucket) == set()
    uploads = s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])
    assert [u["Key"] for u in uploads] == ["exit/volumes/0001-docs.tar.age"]

    s3_proxy.restore()
    _seal(target, bundle_keys, LocalPathSource("docs", tree, ["docs"]))
    assert not s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads")
    assert verify_bundle(S3BundleSource(s3_client, s3_bucket, "exit"), [bundle_keys.identity]) == []


def test_failed_writer_aborts_its_upload(s3_client: Any, s3_bucket: str) -> None:
    target = S3Target(s3_client, s3_bucket, "p", part_size=5 * MiB)
    with pytest.raises(RuntimeError, match="boom"), target.open_write("volumes/x.tar.age") as out:
        out.write(os.urandom(12 * MiB))  # two parts sent
        raise RuntimeError("boom")
    assert _keys(s3_client, s3_bucket) == set()
    assert not s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads")
    assert not target.exists("volumes/x.tar.age")

    with target.open_write("small.txt") as out:
        out.write(b"tiny")
    assert target.exists("small.txt")
    assert s3_client.get_object(Bucket=s3_bucket, Key="p/small.txt")["Body"].read() == b"tiny"


def test_urls_and_a_missing_bucket(s3_env: Any, s3_bucket: str, bundle_keys: BundleKeys) -> None:
    target = s3_target_from_url(f"s3://{s3_bucket}/a/b")
    assert target.describe() == f"s3://{s3_bucket}/a/b/"
    with target.open_write("f.txt") as out:
        out.write(b"x")
    source = s3_bundle_source_from_url(f"s3://{s3_bucket}/a/b/")
    assert list(source.list_files()) == ["f.txt"]
    with source.open_read("f.txt") as handle:
        assert handle.read() == b"x"
    with pytest.raises(PermanentConnectorError, match="no such object"):  # noqa: SIM117
        with source.open_read("missing"):
            pass
    missing = s3_target_from_url("s3://no-such-bucket-zz/x")
    with pytest.raises(PermanentConnectorError, match=r"s3://no-such-bucket-zz: bucket does not"):  # noqa: SIM117
        with missing.open_write("f.txt") as out:
            out.write(b"x")
    with tarfile.open(fileobj=io.BytesIO(b""), mode="w"):
        pass
