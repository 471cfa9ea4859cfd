"""`handover seal s3://... --out s3://...` and `handover verify s3://...` as a user runs them:
a subprocess whose only S3 configuration is boto3's standard AWS_* environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.s3 import MotoServer, fill_bucket

pytestmark = pytest.mark.integration
HANDOVER = [sys.executable, "-c", "from handover.cli import main; main()"]


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HANDOVER, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_seal_from_s3_to_s3_then_verify_from_s3(
    s3_server: MotoServer, s3_client: Any, s3_bucket: str, bundle_keys: Any, tmp_path: Path
) -> None:
    fill_bucket(
        s3_client,
        s3_bucket,
        {"shared/a.txt": b"a\n", "shared/sub/b.txt": b"b\n", "other/c.txt": b"c\n"},
    )
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "notes.txt").write_text("local notes\n")
    key = tmp_path / "provider-signing"
    key.write_bytes(bundle_keys.signing_key.private_openssh())
    key.chmod(0o600)
    project = Path(__file__).resolve().parents[2]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        **s3_server.env(),
        "PYTHONPATH": str(project),
    }
    sealed = _run(
        [
            "seal",
            f"s3://{s3_bucket}/shared/",
            str(tmp_path / "local"),
            "--to",
            str(bundle_keys.recipient),
            "--sign-key",
            str(key),
            "--out",
            f"s3://{s3_bucket}/bundles/exit-1",
        ],
        env,
        tmp_path,
    )
    assert sealed.returncode == 0, sealed.stderr
    pages = s3_client.list_objects_v2(Bucket=s3_bucket, Prefix="bundles/exit-1/")
    names = {o["Key"].removeprefix("bundles/exit-1/") for o in pages["Contents"]}
    assert {"SHA256SUMS", "SHA256SUMS.sig", "README.txt", "index.tar.age"} <= names
    assert len([n for n in names if n.startswith("volumes/")]) == 2

    verified = _run(
        ["verify", f"s3://{s3_bucket}/bundles/exit-1", "--identity", str(bundle_keys.key_file)],
        env,
        tmp_path,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr

    missing = _run(["verify", "s3://no-such-bucket-cli/x"], env, tmp_path)
    assert missing.returncode == 1
    assert "s3://no-such-bucket-cli: bucket does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr
