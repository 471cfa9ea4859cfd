"""Sealing client buckets (S3PrefixSource) through a real moto server over HTTP."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from handover.bundle.writer import BundleWriter
from handover.connectors.s3 import S3PrefixSource, s3_client, s3_source_from_url
from handover.errors import AuthFailed, PermanentConnectorError, TransientConnectorError
from tests.fixtures.s3 import (
    AuthServer,
    BundleKeys,
    MotoServer,
    fill_bucket,
    make_client,
    open_with_standard_tools,
)

pytestmark = pytest.mark.integration


def _drain(source: S3PrefixSource) -> bytes:
    with source.open_tar() as stream:
        return stream.read()


def test_seal_from_bucket_opens_with_age_tar_and_sha256sum(
    s3_client: Any, s3_bucket: str, bundle_keys: BundleKeys, tmp_path: Path
) -> None:
    objects = {
        "data/a.txt": b"alpha\n",
        "data/empty": b"",
        "data/sub/": b"",  # folder marker
        "data/sub/b.bin": os.urandom(70_000),
        "data/été/ünïcødé.txt": b"accents\n",
        "data/" + "long-" * 40 + "/name.txt": b"long path\n",
        "data/big.bin": os.urandom(20 * 1024 * 1024 + 123),  # ranged GETs
        "outside/never.txt": b"not under the prefix\n",
    }
    fill_bucket(s3_client, s3_bucket, objects)
    source = s3_source_from_url(f"s3://{s3_bucket}/data", "docs", client=s3_client)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    writer = BundleWriter(bundle, [bundle_keys.recipient], bundle_keys.signing_key)
    record = writer.add_volume(source)
    writer.finish()

    (volume,) = open_with_standard_tools(bundle, bundle_keys.key_file, tmp_path / "out")
    for key, body in objects.items():
        if not key.startswith("data/") or key.endswith("/"):
            continue
        assert (volume / key.removeprefix("data/")).read_bytes() == body, key
    assert (volume / "sub").is_dir()
    assert not (volume / "never.txt").exists()
    by_path = {m.path: m for m in record.members}
    big = by_path["big.bin"]
    assert big.sha256 == hashlib.sha256(objects["data/big.bin"]).hexdigest()
    assert big.extra["s3_key"] == "data/big.bin"
    assert big.extra["etag"] and big.extra["last_modified"]
    assert big.extra["storage_class"] == "STANDARD"
    assert record.origin == f"s3://{s3_bucket}/data/"


def test_all_versions_of_a_versioned_bucket(s3_client: Any, s3_bucket: str) -> None:
    s3_client.put_bucket_versioning(Bucket=s3_bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3_client.put_object(Bucket=s3_bucket, Key="doc.txt", Body=b"first\n")["VersionId"]
    v2 = s3_client.put_object(Bucket=s3_bucket, Key="doc.txt", Body=b"second\n")["VersionId"]
    gone = s3_client.put_object(Bucket=s3_bucket, Key="gone.txt", Body=b"deleted\n")["VersionId"]
    s3_client.delete_object(Bucket=s3_bucket, Key="gone.txt")  # delete marker

    latest = S3PrefixSource(s3_client, s3_bucket, "", "v", versions="latest")
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(_drain(latest))) as tar:
        assert tar.getnames() == ["doc.txt"]
        assert tar.extractfile("doc.txt").read() == b"second\n"  # type: ignore[union-attr]

    every = S3PrefixSource(s3_client, s3_bucket, "", "v", versions="all")
    with tarfile.open(fileobj=io.BytesIO(_drain(every))) as tar:
        names = set(tar.getnames())
        assert names == {f"doc.txt@{v1}", f"doc.txt@{v2}", f"gone.txt@{gone}"}
        assert tar.extractfile(f"doc.txt@{v1}").read() == b"first\n"  # type: ignore[union-attr]
    extras = every.member_extras()
    assert extras[f"doc.txt@{v2}"]["is_latest"] == "true"
    assert extras[f"doc.txt@{v1}"]["is_latest"] == "false"
    assert extras[f"doc.txt@{v1}"]["version_id"] == v1


def test_missing_bucket_names_the_bucket(s3_client: Any) -> None:
    source = S3PrefixSource(s3_client, "no-such-bucket-here", "x/", "x")
    with pytest.raises(
        PermanentConnectorError, match=r"s3://no-such-bucket-here: bucket does not exist"
    ):
        _drain(source)


def test_wrong_credentials_say_so_without_the_secret(
    s3_auth_server: AuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handover.contract.perimeter import S3Settings

    monkeypatch.setenv("S3_KEY_ID", s3_auth_server.access_key_id)
    monkeypatch.setenv("S3_SECRET", "wrong-secret-CANARY-1234567890")
    settings = S3Settings(
        endpoint_url=s3_auth_server.endpoint_url,
        region="us-east-1",
        addressing_style="path",
        access_key_id="env:S3_KEY_ID",
        secret_access_key="env:S3_SECRET",
    )
    client = s3_client(settings)
    source = S3PrefixSource(client, s3_auth_server.bucket, "", "x")
    with pytest.raises(AuthFailed) as caught:
        _drain(source)
    message = str(caught.value)
    assert message.startswith(f"s3://{s3_auth_server.bucket}/: ")
    assert "signature does not match" in message
    assert "CANARY" not in message and "CANARY" not in repr(caught.value.__cause__.args)  # type: ignore[union-attr]

    unknown = make_client(s3_auth_server.endpoint_url, "AKIAUNKNOWN000000000", "whatever")
    with pytest.raises(AuthFailed, match="invalid access key"):
        _drain(S3PrefixSource(unknown, s3_auth_server.bucket, "", "x"))

    good = make_client(
        s3_auth_server.endpoint_url, s3_auth_server.access_key_id, s3_auth_server.secret_access_key
    )
    good.put_object(Bucket=s3_auth_server.bucket, Key="ok.txt", Body=b"ok")
    assert b"ok.txt" in _drain(S3PrefixSource(good, s3_auth_server.bucket, "", "x"))


def test_unreachable_endpoint_is_transient() -> None:
    from tests.fixtures.s3 import free_port

    client = make_client(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TransientConnectorError, match="endpoint unreachable"):
        _drain(S3PrefixSource(client, "some-bucket", "", "x"))


def test_standard_aws_environment_is_honoured(s3_env: MotoServer, s3_bucket: str) -> None:
    """AWS_ENDPOINT_URL and the key variables alone reach the endpoint (`handover seal` path)."""
    s3_env.client().put_object(Bucket=s3_bucket, Key="k/one.txt", Body=b"1")
    source = s3_source_from_url(f"s3://{s3_bucket}/k/", "k")
    assert b"one.txt" in _drain(source)
