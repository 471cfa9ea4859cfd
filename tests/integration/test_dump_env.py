"""A dump's `env:` reaches the command on a real sshd host, and no command line shows it (#12).

The secret goes through the channel's stdin and the remote shell's `read`
builtin: the dump command sees it in its environment, while the process list
of the host (read by the dump itself with `ps`, and by this test from
/proc while the dump runs) and sshd's log never hold it.
"""

from __future__ import annotations

import io
import tarfile
import threading
from pathlib import Path

import pytest

from handover.bundle.snapshot import snapshot_source
from handover.connectors.datasets import dataset_source
from handover.connectors.ssh.connector import SSHConnector
from handover.contract.perimeter import Dataset, Host
from handover.errors import ConnectorError
from tests.fixtures.sshd import SshdHost

pytestmark = pytest.mark.integration

CONTRACT = "acme-test"
# Spaces, quotes, a backslash, `$` and a glob: the value must arrive byte for byte.
SECRET = "s3cr3t-DumpEnv pa ss'w\"o\\rd $HOME *"


def connect(host: SshdHost) -> SSHConnector:
    return SSHConnector.from_host(
        Host.model_validate(host.host_dict()), CONTRACT, retry_delay_s=0.05
    )


def dump_dataset(command: str) -> Dataset:
    return Dataset.model_validate(
        {
            "name": "erp-db",
            "host": "nosudo",
            "dump": {
                "command": command,
                "filename": "erp.dump",
                "env": {"PGPASSWORD": "env:TEST_DUMP_PASSWORD", "PGUSER": "env:TEST_DUMP_USER"},
            },
        }
    )


def command_lines() -> list[str]:
    """Every process's command line on this machine (the sshd hosts run here)."""
    lines = []
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            lines.append(path.read_bytes().replace(b"\0", b" ").decode("utf-8", "replace"))
        except OSError:
            continue
    return lines


class ProcessWatch:
    """Reads every command line of the machine, again and again, while a dump runs."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.seen.update(command_lines())
            self._stop.wait(0.01)

    def __enter__(self) -> ProcessWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def test_the_dump_sees_its_env_and_no_command_line_shows_it(
    sshd_nosudo: SshdHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_DUMP_PASSWORD", SECRET)
    monkeypatch.setenv("TEST_DUMP_USER", "erp")
    # The dump writes what it received, then the host's process list as its own user sees
    # it while the dump (and the script that read the secret) still run.
    command = (
        'printf "%s|%s\\n" "$PGPASSWORD" "$PGUSER"; sleep 0.5; echo ---ps---; ps -eww -o args='
    )
    with connect(sshd_nosudo) as conn, ProcessWatch() as watch:
        source = dataset_source(dump_dataset(command), conn, None)
        with source.open_tar() as stream:
            data = stream.read()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        handle = archive.extractfile("erp.dump")
        assert handle is not None
        dumped = handle.read().decode("utf-8")
    received, listing = dumped.split("---ps---\n", 1)
    assert received == f"{SECRET}|erp\n"  # the dump saw both, byte for byte
    assert "ps -eww -o args=" in listing and "sleep" not in received  # the listing is real
    assert SECRET not in listing
    assert any("IFS= read -r PGPASSWORD" in line for line in watch.seen)  # the watch saw it run
    assert not any(SECRET in line or "s3cr3t-DumpEnv" in line for line in watch.seen)
    assert "s3cr3t-DumpEnv" not in sshd_nosudo.log_path.read_text(errors="replace")


def test_a_failed_dump_with_env_says_why_without_the_secret(
    sshd_nosudo: SshdHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_DUMP_PASSWORD", SECRET)
    monkeypatch.setenv("TEST_DUMP_USER", "erp")
    dataset = dump_dataset('echo "pg_dump: password authentication failed" >&2; exit 7')
    with connect(sshd_nosudo) as conn:
        source = dataset_source(dataset, conn, None)
        with pytest.raises(ConnectorError) as caught:
            snapshot_source(source)
    message = str(caught.value)
    assert "dump command exited with status 7" in message
    assert "password authentication failed" in message
    assert "s3cr3t-DumpEnv" not in message and "s3cr3t-DumpEnv" not in repr(source.origin)
