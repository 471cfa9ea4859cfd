"""The bundle commands through typer's runner: labels, exit codes, messages."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from handover.cli import _register, app
from handover.cli.bundle_cmd import unique_labels

_register()
runner = CliRunner()


def invoke(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def test_labels_come_from_the_source_and_are_unique() -> None:
    assert unique_labels(
        [
            "/srv/www",
            "/var/www/",
            "ssh://ops@web01:2222/var/www",
            "s3://acme-docs/shared/",
            "s3://acme-docs",
            "/data/données été",
        ]
    ) == ["www", "www-2", "web01-www", "acme-docs-shared", "acme-docs", "donn-es-t"]


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, str, Path]:
    identity = tmp_path / "id.txt"
    code, out = invoke("keygen", "--out", identity)
    assert code == 0, out
    signing = tmp_path / "signing"
    code, out = invoke("keygen", "--signing", "--out", signing)
    assert code == 0, out
    recipient = identity.read_text().splitlines()[1].split(": ")[1]
    return identity, recipient, signing


def test_seal_verify_open_round_trip(keys: tuple[Path, str, Path], tmp_path: Path) -> None:
    identity, recipient, signing = keys
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "a.txt").write_text("a")
    bundle = tmp_path / "bundle"
    code, out = invoke("seal", tree, "--to", recipient, "--sign-key", signing, "--out", bundle)
    assert code == 0, out
    assert "Sealed 1 volume(s), 1 files" in out
    code, out = invoke("verify", bundle, "--identity", identity, "--signer", f"{signing}.pub")
    assert (code, "every volume decrypted" in out) == (0, True)
    code, out = invoke("open", bundle, "--identity", identity, "--into", tmp_path / "o")
    assert code == 0, out
    assert (tmp_path / "o" / "0001-tree" / "tree" / "sub" / "a.txt").read_text() == "a"


def on_a_terminal(*args: str | Path) -> tuple[int, str]:
    """Run `handover ARGS` in a child whose output is a pseudo-terminal; return code, output."""
    leader, follower = pty.openpty()
    command = [sys.executable, "-c", "from handover.cli import main; main()", *map(str, args)]
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "160"}
    process = subprocess.Popen(command, stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    output = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    return process.wait(timeout=60), output.decode(errors="replace")


def test_verify_and_open_show_their_progress_on_a_terminal_only(
    keys: tuple[Path, str, Path], tmp_path: Path
) -> None:
    identity, recipient, signing = keys
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "data.bin").write_bytes(os.urandom(300_000))
    bundle = tmp_path / "bundle"
    code, out = invoke(
        "seal", tmp_path / "tree", "--to", recipient, "--sign-key", signing, "--out", bundle
    )
    assert code == 0, out
    encrypted = (bundle / "index.tar.age").stat().st_size + sum(
        p.stat().st_size for p in (bundle / "volumes").iterdir()
    )
    total = f"{encrypted / 1000:.1f}/{encrypted / 1000:.1f} kB"  # rich's DownloadColumn

    def command(word: str, into: Path) -> list[str | Path]:
        if word == "verifying":
            return ["verify", bundle, "--identity", identity]
        return ["open", bundle, "--identity", identity, "--into", into]

    for word in ("verifying", "opening"):
        code, shown = on_a_terminal(*command(word, tmp_path / "on-a-terminal"))
        assert code == 0, shown
        assert word in shown and total in shown, shown
        code, out = invoke(*command(word, tmp_path / "not-on-a-terminal"))
        assert code == 0 and word not in out, out


def test_seal_warns_when_the_client_needs_a_recent_age(
    keys: tuple[Path, str, Path], tmp_path: Path
) -> None:
    from handover.bundle.age import MLKEM768X25519Identity

    _identity, recipient, signing = keys
    (tmp_path / "f").write_text("x")
    pq = str(MLKEM768X25519Identity.generate().recipient())
    args = ["--sign-key", signing]
    code, out = invoke("seal", tmp_path / "f", "--to", pq, *args, "--out", tmp_path / "b1")
    assert code == 0, out
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "age 1.3.0 or later" in warnings[0], out
    code, out = invoke("seal", tmp_path / "f", "--to", recipient, *args, "--out", tmp_path / "b2")
    assert code == 0 and "warning:" not in out, out


def test_verify_prints_one_line_per_problem(keys: tuple[Path, str, Path], tmp_path: Path) -> None:
    _identity, recipient, signing = keys
    (tmp_path / "f").write_text("x")
    bundle = tmp_path / "bundle"
    assert invoke("seal", tmp_path / "f", "--to", recipient, "--sign-key", signing, "--out",
                  bundle)[0] == 0  # fmt: skip
    (bundle / "README.txt").write_text("changed")
    (bundle / "provider.pub").unlink()
    code, out = invoke("verify", bundle)
    assert code == 1
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 3, out
    assert any("README.txt: SHA-256 does not match" in e for e in errors)
    assert any("provider.pub: listed in SHA256SUMS but missing" in e for e in errors)


def test_ssh_and_s3_arguments_are_dispatched(keys: tuple[Path, str, Path], tmp_path: Path) -> None:
    _, recipient, signing = keys
    code, out = invoke("seal", "ftp://x/y", "--to", recipient, "--sign-key", signing, "--out",
                       tmp_path / "b")  # fmt: skip
    assert code == 2 and "unknown source kind" in out
    code, out = invoke("seal", "ssh://nohost", "--to", recipient, "--sign-key", signing, "--out",
                       tmp_path / "b")  # fmt: skip
    assert code == 2 and "ssh://USER@HOST" in out


def test_keygen_without_out_prints_the_identity(tmp_path: Path) -> None:
    code, out = invoke("keygen")
    assert code == 0
    assert "AGE-SECRET-KEY-1" in out and "# public key: age1" in out
    code, out = invoke("keygen", "--signing")
    assert code == 2 and "--signing needs --out" in out


def test_open_needs_a_readable_identity(tmp_path: Path) -> None:
    code, out = invoke("open", tmp_path, "--identity", tmp_path / "nope", "--into", tmp_path / "o")
    assert code == 2 and "no such identity file" in out
