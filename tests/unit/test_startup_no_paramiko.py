"""`handover seal ssh://...` carried by `ssh` never imports paramiko (issue 16: start-up).

Importing paramiko (and `invoke`, which it imports for ssh_config) took
about 0.1 s of the 0.35 s before `ssh` started. The seal runs here in a
fresh interpreter with a stand-in `ssh` on PATH that runs the remote
command locally (no sshd needed) and keeps what it was given: the seal must
succeed without paramiko in `sys.modules`, and `ssh` must still be told to
trust exactly the key known_hosts pins, in a generated file, in batch mode.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from handover.bundle.age import X25519Identity
from handover.bundle.sshsig import SigningKey

# Records its argv and the generated known_hosts, then runs the command (its last argument)
# here, as sshd would run it on the host.
FAKE_SSH = """#!/bin/sh
out="{record}"
printf '%s\\n' "$@" > "$out/argv"
for arg in "$@"; do
  case "$arg" in UserKnownHostsFile=*) cp "${{arg#UserKnownHostsFile=}}" "$out/known_hosts";; esac
  last="$arg"
done
exec /bin/sh -c "$last"
"""

SEAL = """
import json, sys
sys.argv = ["handover", *sys.argv[1:]]
from flows.cli import main
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _openssh_key() -> tuple[bytes, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, public.decode("ascii")


@pytest.mark.parametrize("mode", ["auto", "openssh"])
def test_seal_over_ssh_binary_imports_no_paramiko(tmp_path: Path, mode: str) -> None:
    tree = tmp_path / "data" / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("alpha\n")
    (tree / "sub" / "b.bin").write_bytes(os.urandom(70_000))
    record = tmp_path / "record"
    record.mkdir()
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "ssh").write_text(FAKE_SSH.format(record=record))
    (fake_bin / "ssh").chmod(0o755)

    user_key, _ = _openssh_key()
    (tmp_path / "id").write_bytes(user_key)
    (tmp_path / "id").chmod(0o600)
    _, host_public = _openssh_key()
    _, other_public = _openssh_key()
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:2222 {host_public}\nother.example {other_public}\n")
    sign_key = tmp_path / "sign"
    sign_key.write_bytes(SigningKey.generate().private_openssh())
    sign_key.chmod(0o600)
    recipient = str(X25519Identity.generate().recipient())

    argv = [
        "seal",
        f"ssh://root@127.0.0.1:2222{tree}",
        "--known-hosts",
        str(known),
        "--ssh-key",
        str(tmp_path / "id"),
        "--to",
        recipient,
        "--sign-key",
        str(sign_key),
        "--out",
        str(tmp_path / "bundle"),
    ]
    env = {
        **os.environ,
        "PATH": f"{fake_bin}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
        "HANDOVER_SSH_BULK": mode,
    }
    done = subprocess.run(
        [sys.executable, "-c", SEAL, *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["code"] == 0, done.stderr
    loaded = [m for m in result["modules"] if m.split(".")[0] in ("paramiko", "invoke")]
    assert loaded == []
    assert "handover.connectors.ssh.connector" not in result["modules"]

    assert (record / "known_hosts").read_text() == f"handover-pinned-host {host_public}\n"
    ssh_argv = (record / "argv").read_text().splitlines()
    for option in (
        "StrictHostKeyChecking=yes",
        "BatchMode=yes",
        "GlobalKnownHostsFile=/dev/null",
        "HostKeyAlgorithms=ssh-ed25519",
        "IdentitiesOnly=yes",
    ):
        assert option in ssh_argv
    assert ssh_argv[:2] == ["-F", "/dev/null"]
    volumes = list((tmp_path / "bundle" / "volumes").iterdir())
    assert len(volumes) == 1 and volumes[0].stat().st_size > 70_000
