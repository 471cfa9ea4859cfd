"""`handover seal ssh://...` carried by `ssh`: what happens before `ssh` starts (issue 16).

Importing paramiko (and `invoke`, which it imports for ssh_config) took
about 0.1 s of the 0.35 s before `ssh` started, and the bundle writer's
import (~40 ms) came before it too. The seal runs here in a fresh
interpreter with a stand-in `ssh` on PATH that runs the remote command
locally (no sshd needed) and keeps what it was given: the seal must
succeed without paramiko in `sys.modules`, start `ssh` before importing
the writer, and `ssh` must still be told to trust exactly the key
known_hosts pins, in a generated file, in batch mode. An `ssh` started
ahead and never read is stopped, its private folder (the key) removed.

A local seal, likewise, must not import rich (~25 ms of every start; only an
error, a warning or a terminal's progress bar needs it), says where the
bundle went in plain text, brackets and all, and leaves what is alive at its
end out of the shutdown's garbage collections (~40 ms).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from handover.bundle.age import X25519Identity
from handover.bundle.local import DirectorySource
from handover.bundle.reader import verify_bundle_outcome
from handover.bundle.sshsig import SigningKey
from handover.connectors.ssh.url import ssh_source_from_url

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

# Runs `handover` (sys.argv[1:]) through the console entry, then prints its exit code, the
# modules it loaded and what the script's `extra()` reports, as JSON on the last line.
_RUN_AND_REPORT = """
sys.argv = ["handover", *sys.argv[1:]]
from flows.cli import main
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules), **extra()}))
"""

# `handover seal ssh://...`: also whether the writer was imported when `ssh` was started.
SEAL = (
    """
import json, sys
import handover.connectors.ssh.url as url
writer_at_start = []
start = url.SSHUrlSource.start
def spy(self):
    writer_at_start.append("handover.bundle.writer" in sys.modules)
    start(self)
url.SSHUrlSource.start = spy
def extra():
    return {"writer": writer_at_start}
"""
    + _RUN_AND_REPORT
)


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


def _host(tmp_path: Path, script: str) -> tuple[Path, Path, Path, str]:
    """A stand-in `ssh` running `script`, a user key, a known_hosts; (bin, key, known, pin)."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "ssh").write_text(script)
    (fake_bin / "ssh").chmod(0o755)
    user_key, _ = _openssh_key()
    (tmp_path / "id").write_bytes(user_key)
    (tmp_path / "id").chmod(0o600)
    _, host_public = _openssh_key()
    _, other_public = _openssh_key()
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:2222 {host_public}\nother.example {other_public}\n")
    return fake_bin, tmp_path / "id", known, host_public


def _keys(tmp_path: Path) -> tuple[Path, X25519Identity]:
    """A provider signing key file (0600) and a client identity."""
    sign_key = tmp_path / "sign"
    sign_key.write_bytes(SigningKey.generate().private_openssh())
    sign_key.chmod(0o600)
    return sign_key, X25519Identity.generate()


def _run(script: str, argv: list[str], env: dict[str, str]) -> tuple[list[str], dict[str, Any]]:
    """Run `script` (SEAL, LOCAL_SEAL) with `argv`: the lines it printed, and its JSON report."""
    done = subprocess.run(
        [sys.executable, "-c", script, *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    *printed, last = done.stdout.splitlines()
    result: dict[str, Any] = json.loads(last)
    assert result["code"] == 0, done.stderr
    return printed, result


@pytest.mark.parametrize("mode", ["auto", "openssh"])
def test_seal_over_ssh_binary_imports_no_paramiko(tmp_path: Path, mode: str) -> None:
    tree = tmp_path / "data" / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("alpha\n")
    (tree / "sub" / "b.bin").write_bytes(os.urandom(70_000))
    record = tmp_path / "record"
    record.mkdir()
    fake_bin, user_key, known, host_public = _host(tmp_path, FAKE_SSH.format(record=record))
    sign_key, identity = _keys(tmp_path)

    argv = [
        "seal",
        f"ssh://root@127.0.0.1:2222{tree}",
        "--known-hosts",
        str(known),
        "--ssh-key",
        str(user_key),
        "--to",
        str(identity.recipient()),
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
    _, result = _run(SEAL, argv, env)
    loaded = [m for m in result["modules"] if m.split(".")[0] in ("paramiko", "invoke")]
    assert loaded == []
    assert "handover.connectors.ssh.connector" not in result["modules"]
    assert result["writer"] == [False]  # `ssh` started before the writer was imported

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
    outcome = verify_bundle_outcome(DirectorySource(tmp_path / "bundle"), [identity])
    assert outcome.problems == []


def test_an_ssh_started_ahead_and_never_read_is_stopped_and_its_key_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_bin, user_key, known, _ = _host(tmp_path, "#!/bin/sh\nexec sleep 60\n")
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ.get('PATH', os.defpath)}")
    monkeypatch.setenv("HANDOVER_SSH_BULK", "openssh")
    source = ssh_source_from_url("ssh://root@127.0.0.1:2222/srv", known, user_key, "srv")
    source.start()
    started = source._started
    assert started is not None
    folder = started._folder.path
    assert (folder / "id").read_bytes() == user_key.read_bytes()
    assert started._process.poll() is None
    source.stop()
    assert started._process.poll() is not None
    assert not folder.exists()
    source.stop()  # once is enough; again does nothing


def test_a_source_without_a_pinned_key_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_bin, user_key, _, _ = _host(tmp_path, "#!/bin/sh\nexit 99\n")
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ.get('PATH', os.defpath)}")
    source = ssh_source_from_url(
        "ssh://root@127.0.0.1:2222/srv", tmp_path / "no_known_hosts", user_key, "srv"
    )
    source.start()
    assert source._started is None  # paramiko will refuse the unknown host, as before


# A local seal: also pydantic's plugin setting and how many objects were frozen at the end.
LOCAL_SEAL = (
    """
import gc, json, os, sys
def extra():
    return {"plugins": os.environ.get("PYDANTIC_DISABLE_PLUGINS"),
            "frozen": gc.get_freeze_count()}
"""
    + _RUN_AND_REPORT
)


@pytest.mark.parametrize("plugins", [None, "logfire"])
def test_a_local_seal_imports_no_rich_and_prints_its_path_verbatim(
    tmp_path: Path, plugins: str | None
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.txt").write_text("alpha\n")
    sign_key, identity = _keys(tmp_path)
    out = tmp_path / "[bold]bundle [2024]"  # rich would read both as markup
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    if plugins is not None:
        env["PYDANTIC_DISABLE_PLUGINS"] = plugins
    argv = ["seal", str(tree), "--to", str(identity.recipient())]
    argv += ["--sign-key", str(sign_key), "--out", str(out)]
    printed, result = _run(LOCAL_SEAL, argv, env)
    assert [m for m in result["modules"] if m.split(".")[0] == "rich"] == []
    # pydantic's plugin search is skipped unless the user asked for something else
    assert result["plugins"] == (plugins or "__all__")
    # what is alive at the end is spared the shutdown's collections (~40 ms)
    assert result["frozen"] > 10_000
    assert printed[-1].startswith("Sealed 1 volume(s), 1 files, ")
    assert printed[-1].endswith(f" -> {out}")
    assert verify_bundle_outcome(DirectorySource(out), [identity]).problems == []
