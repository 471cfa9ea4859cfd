"""The S3 fixtures themselves (tests/fixtures/s3.py): the moto server keeps connections
alive as S3 does, moto still reads requests as `moto_server` hands them over, and the
cuttable proxy still plays a dead endpoint for a client holding pooled connections."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from tests.fixtures.s3 import MotoServer, TcpProxy, make_client

pytestmark = pytest.mark.integration


def test_one_client_sends_its_requests_over_one_connection(
    s3_proxy: TcpProxy, s3_bucket: str
) -> None:
    client = make_client(s3_proxy.endpoint_url)
    for i in range(5):
        put = client.put_object(Bucket=s3_bucket, Key=f"k{i}", Body=b"x" * 1000)
        assert client.get_object(Bucket=s3_bucket, Key=f"k{i}")["Body"].read() == b"x" * 1000
        client.head_object(Bucket=s3_bucket, Key=f"k{i}")
        with pytest.raises(client.exceptions.NoSuchKey):
            client.get_object(Bucket=s3_bucket, Key=f"missing{i}")
    assert len(client.list_objects_v2(Bucket=s3_bucket)["Contents"]) == 5
    # werkzeug's server (`moto_server`) answers `Connection: close`: 21 connections here.
    assert s3_proxy.accepted == 1
    assert put["ResponseMetadata"]["HTTPHeaders"].get("connection") != "close"


def test_unread_bodies_and_bodiless_answers_leave_the_connection_usable(
    s3_server: MotoServer, s3_bucket: str
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", s3_server.port, timeout=30)
    local_ports = set()
    # moto reads the account from the credential, and checks no signature.
    auth = {
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request,"
        " SignedHeaders=host, Signature=0"
    }

    def send(
        method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, **kw: Any
    ) -> tuple[int, bytes]:
        conn.request(method, path, body, headers={**auth, **(headers or {})}, **kw)
        response = conn.getresponse()
        data = response.read()
        assert response.getheader("Connection") != "close", (method, path)
        assert conn.sock is not None
        local_ports.add(conn.sock.getsockname()[1])
        return response.status, data

    def chunks() -> Iterator[bytes]:
        yield b"chunked "
        yield b"body"

    # A 1 MiB body to a missing bucket: the 404 may come before the body is read.
    status, data = send("PUT", "/no-such-bucket-here/key", b"z" * (1 << 20))
    assert status == 404 and b"NoSuchBucket" in data
    assert send("HEAD", f"/{s3_bucket}/missing") == (404, b"")
    assert send("PUT", f"/{s3_bucket}/chunked", chunks(), encode_chunked=True)[0] == 200
    assert send("GET", f"/{s3_bucket}/chunked") == (200, b"chunked body")
    assert send("GET", f"/{s3_bucket}/chunked", headers={"Range": "bytes=8-"}) == (206, b"body")
    status, data = send("GET", f"/{s3_bucket}?list-type=2")
    assert status == 200 and b"<Key>chunked</Key>" in data
    conn.close()
    assert len(local_ports) == 1


def test_keys_and_metadata_reach_moto_as_sent(s3_client: Any, s3_bucket: str) -> None:
    # moto matches keys against the undecoded path (RAW_URI) and keeps the underscores of
    # metadata names: both come from moto's werkzeug handler, which the keep-alive server
    # replaces (tests/fixtures/moto_keepalive.py).
    keys = ["a%2Fb", "q?mark", "percent%25", "sp ace/été.txt", "dir//double"]
    for key in keys:
        s3_client.put_object(Bucket=s3_bucket, Key=key, Body=key.encode(), Metadata={"my_key": "1"})
    listed = [o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert sorted(listed) == sorted(keys)
    for key in keys:
        got = s3_client.get_object(Bucket=s3_bucket, Key=key)
        assert got["Body"].read() == key.encode()
        assert got["Metadata"] == {"my_key": "1"}


def test_a_cut_ends_pooled_connections_and_restore_serves_again(
    s3_proxy: TcpProxy, s3_bucket: str
) -> None:
    client = make_client(s3_proxy.endpoint_url)
    client.put_object(Bucket=s3_bucket, Key="before", Body=b"1")
    assert s3_proxy.accepted == 1  # and kept in the client's pool
    s3_proxy.cut()
    with pytest.raises(EndpointConnectionError):
        client.get_object(Bucket=s3_bucket, Key="before")
    s3_proxy.restore()
    assert client.get_object(Bucket=s3_bucket, Key="before")["Body"].read() == b"1"
    assert s3_proxy.accepted == 2


def test_ranged_gets_return_the_bytes_of_their_range(s3_client: Any, s3_bucket: str) -> None:
    """The fixture's moto reads one range's bytes only (moto_keepalive.serve_ranges_as_read)."""
    size = (24 << 20) + 12_345  # beyond moto's in-memory buffer: the object is in a file
    body = bytes(range(256)) * (size // 256) + bytes(size % 256)
    s3_client.put_object(Bucket=s3_bucket, Key="big", Body=body)

    def ranged(spec: str) -> tuple[bytes, str]:
        got = s3_client.get_object(Bucket=s3_bucket, Key="big", Range=spec)
        return got["Body"].read(), got["ContentRange"]

    assert ranged("bytes=0-99") == (body[:100], f"bytes 0-99/{size}")
    middle = (16 << 20) - 7
    assert ranged(f"bytes={middle}-{middle + (4 << 20) - 1}") == (
        body[middle : middle + (4 << 20)],
        f"bytes {middle}-{middle + (4 << 20) - 1}/{size}",
    )
    assert ranged(f"bytes={size - 10}-") == (body[-10:], f"bytes {size - 10}-{size - 1}/{size}")
    assert ranged(f"bytes={size - 10}-{size + 100}")[0] == body[-10:]  # clipped, as S3 does
    assert ranged("bytes=-5")[0] == body[-5:]  # a suffix range: moto's own path
    with pytest.raises(s3_client.exceptions.ClientError, match="InvalidRange"):
        ranged(f"bytes={size}-{size + 10}")
    assert s3_client.get_object(Bucket=s3_bucket, Key="big")["Body"].read() == body
