"""Credentials an operator keeps in Prefect blocks, resolved inside the process that needs them."""

from __future__ import annotations

from typing import Any

import pytest
from prefect.blocks.system import Secret as SecretBlock
from prefect_aws import AwsCredentials

import tasks.runtime  # noqa: F401  (registers prefect-secret: and AwsCredentials blocks)
from handover.connectors.s3 import s3_client
from handover.contract.perimeter import S3Settings
from handover.errors import SecretRefError
from handover.secrets.references import resolve_secret

pytestmark = pytest.mark.integration


def test_prefect_secret_reference_resolves_from_the_server(prefect_server: str) -> None:
    SecretBlock(value="canary-from-block").save("handover-test-secret", overwrite=True)
    secret = resolve_secret("prefect-secret:handover-test-secret")
    assert secret.reveal_text() == "canary-from-block"
    assert "canary" not in repr(secret)
    with pytest.raises(SecretRefError, match="no-such-block"):
        resolve_secret("prefect-secret:no-such-block")


def test_aws_credentials_block_drives_s3_auth(prefect_server: str, s3_auth_server: Any) -> None:
    AwsCredentials(
        aws_access_key_id=s3_auth_server.access_key_id,
        aws_secret_access_key=s3_auth_server.secret_access_key,
        region_name="us-east-1",
    ).save("handover-test-aws", overwrite=True)
    settings = S3Settings(
        endpoint_url=s3_auth_server.endpoint_url,
        addressing_style="path",
        aws_credentials_block="handover-test-aws",
    )
    client = s3_client(settings)
    names = {b["Name"] for b in client.list_buckets()["Buckets"]}
    assert s3_auth_server.bucket in names
