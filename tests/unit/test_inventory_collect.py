"""collect_inventory through a connector: one script run, or the files of an SFTP-only account."""

from __future__ import annotations

from pathlib import Path

import pytest

from handover.connectors.base import CommandResult
from handover.connectors.local import LocalConnector
from handover.errors import PermanentConnectorError
from handover.estate.inventory_collect import (
    INVENTORY_SCRIPT,
    NO_SHELL_REASON,
    collect_inventory,
)


class ScriptedHost(LocalConnector):
    """A local host whose commands and shell we choose: what collect_inventory asks is recorded."""

    def __init__(self, root: Path, *, shell: bool, output: bytes = b"") -> None:
        super().__init__("web01", root)
        self.shell = shell
        self.output = output
        self.commands: list[tuple[str, bytes | None]] = []

    def has_shell(self) -> bool:
        return self.shell

    def run(
        self, command: str, *, stdin: bytes | None = None, timeout_s: float = 120
    ) -> CommandResult:
        self.commands.append((command, stdin))
        return CommandResult(exit_status=2, stdout=self.output, stderr=b"sh: oops\nsh: gone")


def test_one_script_run_with_cert_paths_under_the_hosts_root(tmp_path: Path) -> None:
    host = ScriptedHost(tmp_path, shell=True, output=b"==handover:end==\n")
    collect_inventory(host, ["/etc/ssl/my certs"])
    assert host.commands == [
        (f"sh -s -- '{tmp_path}/etc/ssl/my certs'", INVENTORY_SCRIPT.encode()),
    ]


def test_a_script_that_printed_nothing_is_an_error_naming_stderr(tmp_path: Path) -> None:
    host = ScriptedHost(tmp_path, shell=True, output=b"\n")
    with pytest.raises(PermanentConnectorError) as caught:
        collect_inventory(host)
    assert str(caught.value) == (
        "web01: inventory script printed nothing (exit status 2): sh: oops; sh: gone"
    )


def test_an_account_without_shell_gets_the_files_and_named_gaps(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (tmp_path / "etc" / "hostname").write_text("web01\n")
    host = ScriptedHost(tmp_path, shell=False)

    inventory = collect_inventory(host, ["/etc/ssl"])

    assert host.commands == []  # no command is even tried
    assert inventory.os_release["ID"] == "debian" and inventory.hostname == "web01"
    assert [user.name for user in inventory.users] == ["root"]
    assert f"packages: {NO_SHELL_REASON}" in inventory.unreadable
    assert f"certificates: {NO_SHELL_REASON}" in inventory.unreadable
