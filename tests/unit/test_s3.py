"""Unit tests of the S3 connector: URLs, error mapping, client settings, the tar producer and
the multipart writer, against in-memory fakes (no network)."""

from __future__ import annotations

import io
import tarfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

import handover.connectors.s3.delivery as delivery
import handover.connectors.s3.source as source_mod
from handover.connectors.s3 import (
    S3Credentials,
    S3PrefixSource,
    S3Target,
    parse_s3_url,
    raise_s3_error,
    register_credentials_provider,
    s3_client,
)
from handover.contract.perimeter import S3Settings
from handover.errors import (
    AuthFailed,
    ConnectorError,
    PermanentConnectorError,
    SecretRefError,
    TransientConnectorError,
    UsageError,
)
from handover.secrets.references import Secret

MiB = 1 << 20
WHEN = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _client_error(code: str, status: int = 400, message: str = "server says") -> Exception:
    return botocore.exceptions.ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "GetObject",
    )


def _raised(exc: Exception, where: str = "s3://acme-docs/k") -> Exception:
    with pytest.raises(Exception) as caught:
        raise_s3_error(exc, where)
    return caught.value


# -- URLs ----------------------------------------------------------------------------------


def test_parse_s3_url_normalizes_the_prefix_as_a_folder() -> None:
    assert parse_s3_url("s3://acme-docs") == ("acme-docs", "")
    assert parse_s3_url("s3://acme-docs/") == ("acme-docs", "")
    assert parse_s3_url("s3://acme-docs/shared") == ("acme-docs", "shared/")
    assert parse_s3_url("s3://acme-docs//a/b/") == ("acme-docs", "a/b/")


def test_join_key_treats_the_prefix_as_a_folder() -> None:
    from handover.connectors.s3 import join_key

    assert join_key("exit", "SHA256SUMS") == "exit/SHA256SUMS"
    assert join_key("exit/", "/volumes/v.age") == "exit/volumes/v.age"
    assert join_key("", "README.txt") == "README.txt"


@pytest.mark.parametrize("url", ["http://acme/x", "s3://", "s3://Bad_Bucket/x", "s3://ab/x"])
def test_parse_s3_url_rejects_bad_urls(url: str) -> None:
    with pytest.raises(UsageError, match=r"bad bucket|not an s3"):
        parse_s3_url(url)


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "kind", "text"),
    [
        ("InvalidAccessKeyId", 403, AuthFailed, "invalid access key"),
        ("SignatureDoesNotMatch", 403, AuthFailed, "signature does not match"),
        ("AccessDenied", 403, AuthFailed, "access denied"),
        ("NoSuchKey", 404, PermanentConnectorError, "no such object"),
        ("PreconditionFailed", 412, PermanentConnectorError, "changed while it was being read"),
        ("InvalidObjectState", 403, PermanentConnectorError, "archived"),
        ("SlowDown", 503, TransientConnectorError, "server error SlowDown"),
        ("WeirdThing", 500, TransientConnectorError, "server error"),
        ("WeirdThing", 400, PermanentConnectorError, "WeirdThing: server says"),
    ],
)
def test_client_errors_are_classified(code: str, status: int, kind: type, text: str) -> None:
    error = _raised(_client_error(code, status))
    assert type(error) is kind
    assert str(error).startswith("s3://acme-docs/k: ")
    assert text in str(error)
    assert isinstance(error.__cause__, botocore.exceptions.ClientError)


def test_auth_errors_never_quote_the_server_message() -> None:
    error = _raised(_client_error("SignatureDoesNotMatch", 403, "StringToSign AKIA-SECRET-ish"))
    assert "AKIA" not in str(error)


def test_missing_bucket_names_the_bucket_only() -> None:
    assert (
        str(_raised(_client_error("NoSuchBucket", 404))) == "s3://acme-docs: bucket does not exist"
    )
    head_bucket_404 = _raised(_client_error("404", 404), "s3://acme-docs")
    assert str(head_bucket_404) == "s3://acme-docs: bucket does not exist"


def test_connection_errors_are_transient_and_missing_credentials_are_auth() -> None:
    unreachable = _raised(botocore.exceptions.EndpointConnectionError(endpoint_url="http://x:1"))
    assert isinstance(unreachable, TransientConnectorError)
    assert "endpoint unreachable (http://x:1)" in str(unreachable)
    timeout = _raised(botocore.exceptions.ReadTimeoutError(endpoint_url="http://x:1"))
    assert isinstance(timeout, TransientConnectorError)
    assert isinstance(_raised(botocore.exceptions.NoCredentialsError()), AuthFailed)
    with pytest.raises(KeyError):
        raise_s3_error(KeyError("a bug stays a bug"), "s3://acme-docs")


# -- client --------------------------------------------------------------------------------


def test_client_applies_settings_and_resolves_references(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_KEY", "AKIAACME")
    monkeypatch.setenv("ACME_SECRET", "s3cr3t-value\n")
    settings = S3Settings(
        endpoint_url="http://127.0.0.1:9000",
        region="eu-west-3",
        addressing_style="path",
        checksum_when_required=True,
        access_key_id="env:ACME_KEY",
        secret_access_key="env:ACME_SECRET",
    )
    client = s3_client(settings)
    config = client.meta.config
    assert client.meta.endpoint_url == "http://127.0.0.1:9000"
    assert client.meta.region_name == "eu-west-3"
    assert config.s3 == {"addressing_style": "path"}
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"
    assert config.max_pool_connections >= 32 and config.tcp_keepalive is True
    frozen = client._request_signer._credentials.get_frozen_credentials()
    assert (frozen.access_key, frozen.secret_key) == ("AKIAACME", "s3cr3t-value")


def test_client_honours_the_standard_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ca-central-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "envsecret")
    client = s3_client(None)
    assert client.meta.endpoint_url == "http://127.0.0.1:9999"
    assert client.meta.region_name == "ca-central-1"
    assert client._request_signer._credentials.access_key == "AKIAENV"
    override = s3_client(S3Settings(endpoint_url="http://127.0.0.1:1234"))
    assert override.meta.endpoint_url == "http://127.0.0.1:1234"


def test_clients_share_botocore_data_and_keep_their_own_credentials() -> None:
    """One loader per process (memory: issue #16), never one session's keys in another."""
    from handover.connectors.s3 import client as client_mod
    from handover.connectors.s3.client import S3Credentials

    def made(key: str, region: str) -> Any:
        secret = Secret(f"{key}-secret".encode())
        return s3_client(credentials=S3Credentials(key, secret, region=region))

    first, second, third = made("AKIAONE", "eu-west-3"), made("AKIATWO", "us-east-1"), s3_client()
    keys = [c._request_signer._credentials for c in (first, second)]
    assert [(k.access_key, k.secret_key) for k in keys] == [
        ("AKIAONE", "AKIAONE-secret"),
        ("AKIATWO", "AKIATWO-secret"),
    ]
    assert [first.meta.region_name, second.meta.region_name] == ["eu-west-3", "us-east-1"]
    loaders = {id(c._loader) for c in (first, second, third)}
    assert loaders == {id(client_mod._loader)}
    paths = client_mod._loader.search_paths
    assert len(paths) == len(set(paths))  # boto3's data folder once, not once per session


def test_botocore_data_loads_into_plain_dicts_with_the_same_content(tmp_path: Path) -> None:
    """Plain dicts where botocore builds OrderedDicts (memory: issue #16), nothing else changed."""
    import gzip

    import botocore
    from botocore.loaders import JSONFileLoader

    from handover.connectors.s3.client import _PlainJSONFileLoader

    ours, theirs = _PlainJSONFileLoader(), JSONFileLoader()
    model = str(Path(botocore.__file__).parent / "data" / "s3" / "2006-03-01" / "service-2")
    assert ours.exists(model) and theirs.exists(model)
    loaded = ours.load_file(model)
    assert loaded == theirs.load_file(model)
    assert type(loaded) is dict and type(loaded["shapes"]["GetObjectRequest"]) is dict
    assert list(loaded["shapes"]) == list(theirs.load_file(model)["shapes"])  # order kept
    (tmp_path / "zipped.json.gz").write_bytes(gzip.compress(b'{"b": 1, "a": [{"c": 2}]}'))
    assert ours.load_file(str(tmp_path / "zipped")) == {"b": 1, "a": [{"c": 2}]}
    assert (
        not ours.exists(str(tmp_path / "absent"))
        and ours.load_file(str(tmp_path / "absent")) is None
    )


def test_unknown_profile_and_unresolvable_references(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AuthFailed, match="profile 'nope' not found"):
        s3_client(S3Settings(profile="nope"))
    monkeypatch.delenv("MISSING_KEY", raising=False)
    with pytest.raises(SecretRefError, match="MISSING_KEY"):
        s3_client(S3Settings(access_key_id="env:MISSING_KEY", secret_access_key="env:MISSING_KEY"))


def test_credentials_block_goes_through_the_registered_provider(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import handover.connectors.s3.client as s3_base

    # Another test may have imported tasks.runtime, which registers the prefect-aws provider.
    monkeypatch.setattr(s3_base, "_credentials_provider", None)
    with pytest.raises(SecretRefError, match="no credentials provider"):
        s3_client(S3Settings(aws_credentials_block="acme-s3"))
    asked: list[str] = []

    def provider(name: str) -> S3Credentials:
        asked.append(name)
        return S3Credentials("AKIABLOCK", Secret(b"blocksecret"), region="eu-west-1")

    register_credentials_provider(provider)  # monkeypatch restores the previous one
    client = s3_client(S3Settings(aws_credentials_block="acme-s3"))
    assert asked == ["acme-s3"]
    assert client._request_signer._credentials.access_key == "AKIABLOCK"
    assert client.meta.region_name == "eu-west-1"


# -- fakes ---------------------------------------------------------------------------------


class FakeBody:
    def __init__(self, data: bytes) -> None:
        self.stream = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self.stream.read(size)

    def readinto(self, buffer: Any) -> int:
        return self.stream.readinto(buffer)

    def close(self) -> None:
        pass


class FakeS3:
    """Just enough of an S3 client: listing pages, (ranged) GETs, multipart uploads."""

    def __init__(self, objects: dict[str, bytes], page_size: int = 3) -> None:
        from types import SimpleNamespace

        self.meta = SimpleNamespace(
            config=SimpleNamespace(request_checksum_calculation="when_required")
        )
        self.objects = objects
        self.page_size = page_size
        self.lock = threading.Lock()
        self.inflight = 0
        self.max_inflight = 0
        self.gets: list[tuple[str, str | None]] = []
        self.calls: list[str] = []
        self.parts: dict[int, bytes] = {}
        self.fail_get: str | None = None
        self.fail_part: int | None = None
        self.completed: dict[str, bytes] = {}

    def get_paginator(self, name: str) -> Any:
        assert name == "list_objects_v2"
        fake = self

        class Paginator:
            def paginate(self, Bucket: str, Prefix: str) -> Any:
                keys = sorted(k for k in fake.objects if k.startswith(Prefix))
                for i in range(0, max(len(keys), 1), fake.page_size):
                    yield {
                        "Contents": [
                            {
                                "Key": k,
                                "Size": len(fake.objects[k]),
                                "ETag": f'"etag-{k}"',
                                "LastModified": WHEN,
                                "StorageClass": "STANDARD",
                            }
                            for k in keys[i : i + fake.page_size]
                        ]
                    }

        return Paginator()

    def get_object(self, Bucket: str, Key: str, Range: str | None = None, **kw: Any) -> Any:
        assert kw.get("IfMatch") == f'"etag-{Key}"'
        if Key == self.fail_get:
            raise _client_error("AccessDenied", 403)
        data = self.objects[Key]
        if Range:
            start, end = (int(x) for x in Range.removeprefix("bytes=").split("-"))
            data = data[start : end + 1]
        with self.lock:
            self.gets.append((Key, Range))
            self.inflight += len(data)
            self.max_inflight = max(self.max_inflight, self.inflight)
        with self.lock:
            self.inflight -= len(data)
        return {"Body": FakeBody(data)}

    def create_multipart_upload(self, **kw: Any) -> Any:
        self.calls.append("create")
        return {"UploadId": "up-1"}

    def upload_part(
        self, PartNumber: int, Body: bytes, ContentMD5: str | None = None, **kw: Any
    ) -> Any:
        import base64
        import hashlib

        if self.meta.config.request_checksum_calculation == "when_required":
            assert ContentMD5 and base64.b64decode(ContentMD5) == hashlib.md5(Body).digest()
        else:  # botocore's own CRC32 covers the part, as with s3transfer
            assert ContentMD5 is None and kw["ChecksumAlgorithm"] == "CRC32"
        if PartNumber == self.fail_part:
            raise botocore.exceptions.EndpointConnectionError(endpoint_url="http://gone")
        with self.lock:
            self.parts[PartNumber] = Body
        return {"ETag": f'"p{PartNumber}"', "ChecksumCRC32": f"crc{PartNumber}"}

    def complete_multipart_upload(self, Key: str, MultipartUpload: Any, **kw: Any) -> Any:
        numbers = [p["PartNumber"] for p in MultipartUpload["Parts"]]
        assert all(p["ChecksumCRC32"] == f"crc{p['PartNumber']}" for p in MultipartUpload["Parts"])
        assert numbers == sorted(self.parts) == list(range(1, len(numbers) + 1))
        self.completed[Key] = b"".join(self.parts[n] for n in numbers)
        self.calls.append("complete")

    def abort_multipart_upload(self, **kw: Any) -> Any:
        self.calls.append("abort")

    def put_object(self, Key: str, Body: bytes, **kw: Any) -> Any:
        self.completed[Key] = Body
        self.calls.append("put")


def _tar_of(source: S3PrefixSource) -> bytes:
    with source.open_tar() as stream:
        return stream.read()


# -- the tar producer ----------------------------------------------------------------------


def test_prefix_source_builds_a_valid_tar_with_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source_mod, "SMALL_OBJECT_MAX", 1000)
    monkeypatch.setattr(source_mod, "RANGE_SIZE", 1024)
    objects = {
        "p/a.txt": b"a" * 10,
        "p/big.bin": bytes(range(256)) * 20,  # 5120 bytes: 5 ranges
        "p/dir/": b"",
        "p/x/../escape": b"no escape",
        "p/ü" + "n" * 150: b"long unicode",
        "q/other": b"not in prefix",
    }
    fake = FakeS3(objects)
    source = S3PrefixSource(fake, "acme-docs", "p", "docs", max_inflight_bytes=2048)  # type: ignore[arg-type]
    data = _tar_of(source)
    assert len(data) % 512 == 0
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        assert names == sorted(names, key=lambda n: n)  # listing order
        assert set(names) == {"a.txt", "big.bin", "dir", "x/%2E%2E/escape", "ü" + "n" * 150}
        assert tar.extractfile("big.bin").read() == objects["p/big.bin"]  # type: ignore[union-attr]
        assert tar.getmember("dir").isdir()
    assert [r for k, r in fake.gets if k == "p/big.bin"] == [
        f"bytes={o}-{o + 1023}" for o in range(0, 5120, 1024)
    ]
    extras = source.member_extras()
    assert extras["x/%2E%2E/escape"]["s3_key"] == "p/x/../escape"
    assert extras["big.bin"]["etag"] == "etag-p/big.bin"
    assert extras["a.txt"] == {  # the keys in the manifest's order
        "s3_key": "p/a.txt",
        "etag": "etag-p/a.txt",
        "last_modified": WHEN.isoformat(),
        "storage_class": "STANDARD",
    }
    assert list(extras["a.txt"]) == ["s3_key", "etag", "last_modified", "storage_class"]
    assert set(extras) == {"a.txt", "big.bin", "dir/", "x/%2E%2E/escape", "ü" + "n" * 150}
    first = dict(extras)
    del fake.objects["p/a.txt"]
    _tar_of(source)  # a second stream has facts of its own; the first ones stay as they were
    assert dict(extras) == first and "a.txt" not in source.member_extras()


def test_prefix_source_error_surfaces_from_read_as_connector_error() -> None:
    fake = FakeS3({f"p/{i:03d}": b"x" * 100 for i in range(50)})
    fake.fail_get = "p/020"
    source = S3PrefixSource(fake, "acme-docs", "p/", "docs")  # type: ignore[arg-type]
    with pytest.raises(AuthFailed, match="s3://acme-docs/p/020: access denied"):
        _tar_of(source)


def test_prefix_source_holds_at_most_its_window_and_two_pieces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A slow reader: object data fetched and not yet read stays under window + 2 ranges.

    (One range over the window when it was submitted, one being read.)
    """
    monkeypatch.setattr(source_mod, "SMALL_OBJECT_MAX", 1000)
    monkeypatch.setattr(source_mod, "RANGE_SIZE", 1024)
    objects = {f"p/{i:03d}": bytes([i]) * (5000 if i % 3 else 700) for i in range(30)}
    fake = FakeS3(objects)
    fetched = [0]
    get_object = fake.get_object

    def counting_get(**kw: Any) -> Any:
        response = get_object(**kw)
        data = response["Body"].read()
        with fake.lock:
            fetched[0] += len(data)  # from now on held by the source until read
        response["Body"] = FakeBody(data)
        return response

    fake.get_object = counting_get  # type: ignore[method-assign]
    window = 4096
    source = S3PrefixSource(fake, "acme-docs", "p/", "docs", max_inflight_bytes=window)  # type: ignore[arg-type]
    # Where each object's data lies in the stream: a 512-byte header (short names), the
    # data, its padding; so the object data read so far is known at every position.
    spans, at = [], 0
    for key in sorted(objects):
        size = len(objects[key])
        spans.append((at + 512, size))
        at += 512 + -(-size // 512) * 512

    def data_before(position: int) -> int:
        return sum(min(max(position - begin, 0), size) for begin, size in spans)

    held: list[int] = []
    position = 0
    with source.open_tar() as stream:
        while chunk := stream.read(256):
            position += len(chunk)
            time.sleep(0.0005)  # slower than the 16 fetching threads
            with fake.lock:
                held.append(fetched[0] - data_before(position))
    assert position == at + 1024  # the whole archive, as laid out above
    assert data_before(position) == sum(len(v) for v in objects.values())
    assert max(held) <= window + 2 * 1024, max(held)
    assert max(held) > window // 2  # the window was used: the fetchers ran ahead


def test_prefix_source_stops_cleanly_when_the_reader_leaves_early() -> None:
    fake = FakeS3({f"p/{i:04d}": b"y" * 1000 for i in range(2000)}, page_size=100)
    source = S3PrefixSource(fake, "acme-docs", "p/", "docs")  # type: ignore[arg-type]
    with source.open_tar() as stream:
        got = b""
        while len(got) < 10_000:
            got += stream.read(10_000 - len(got))
        assert got[:4] == b"0000"
    assert len(fake.gets) < 2000  # the rest was never fetched


# -- the multipart writer ------------------------------------------------------------------


def test_target_uploads_parts_in_order_and_completes() -> None:
    fake = FakeS3({})
    target = S3Target(fake, "acme-out", "b", part_size=5 * MiB, max_inflight_parts=2)  # type: ignore[arg-type]
    payload = bytes(range(256)) * (23 * MiB // 256)
    with target.open_write("volumes/v.tar.age") as out:
        for i in range(0, len(payload), 1 << 20):
            out.write(payload[i : i + (1 << 20)])
    assert fake.calls == ["create", "complete"]
    assert fake.completed["b/volumes/v.tar.age"] == payload
    assert all(len(p) >= 5 * MiB for n, p in fake.parts.items() if n < len(fake.parts))


def test_target_leaves_part_checksums_to_botocore_by_default() -> None:
    fake = FakeS3({})
    fake.meta.config.request_checksum_calculation = "when_supported"
    target = S3Target(fake, "acme-out", "b", part_size=5 * MiB)  # type: ignore[arg-type]
    with target.open_write("v") as out:
        for _ in range(11):
            out.write(bytes(MiB))
    assert fake.calls == ["create", "complete"] and len(fake.parts) == 3


def test_target_aborts_when_a_part_fails_and_never_completes() -> None:
    fake = FakeS3({})
    fake.fail_part = 2
    target = S3Target(fake, "acme-out", "b", part_size=5 * MiB, max_inflight_parts=1)  # type: ignore[arg-type]
    with pytest.raises(TransientConnectorError, match=r"acme-out/b/v \(part 2\): endpoint"):  # noqa: SIM117
        with target.open_write("v") as out:
            for _ in range(30):
                out.write(bytes(MiB))
    assert "abort" in fake.calls and "complete" not in fake.calls
    assert "b/v" not in fake.completed


def test_target_small_file_is_one_put_and_bad_options_are_refused() -> None:
    fake = FakeS3({})
    with S3Target(fake, "acme-out", "", sse="AES256").open_write("SHA256SUMS") as out:  # type: ignore[arg-type]
        out.write(b"abc  x\n")
    assert fake.calls == ["put"] and fake.completed["SHA256SUMS"] == b"abc  x\n"
    with pytest.raises(UsageError, match="sse"):
        S3Target(fake, "acme-out", "", sse="rot13")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="5 MiB"):
        S3Target(fake, "acme-out", "", part_size=MiB)  # type: ignore[arg-type]


def test_part_sizes_grow_so_ten_thousand_parts_hold_five_tib() -> None:
    sizes = [delivery.part_size_for(n) for n in range(1, 10_001)]
    assert sizes[0] == 8 * MiB and sizes == sorted(sizes)
    assert sum(sizes) > 5 * (1 << 40)
    assert ConnectorError  # the tree stays importable from here
