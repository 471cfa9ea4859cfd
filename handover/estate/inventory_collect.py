"""Collecting one host's inventory through its connector: one script run, or its files alone.

A connector is a transport (run a command, read a small file); what to ask a
host and how to read the answer is the estate's business, so collection is
here, once for every transport. A host that runs commands gets ONE POSIX sh
script (`inventory.sh`), fed to `sh -s -- CERT_PATH...` on stdin: one round
trip, locally or over SSH. An account that may run no command (SFTP-only:
`ForceCommand internal-sftp`) gets what its files tell, with every
command-only fact named unreadable and why.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from datetime import datetime
from importlib import resources
from pathlib import Path

from handover.connectors.base import HostConnector
from handover.errors import PermanentConnectorError
from handover.estate.inventory import Inventory
from handover.estate.inventory_parser import MARKER, parse_inventory
from handover.estate.inventory_root import root_inventory

__all__ = [
    "INVENTORY_SCRIPT",
    "NO_SHELL_REASON",
    "collect_inventory",
    "inventory_command",
    "inventory_from_files",
]

INVENTORY_SCRIPT: str = (
    resources.files("handover.estate").joinpath("inventory.sh").read_text(encoding="utf-8")
)
"""The POSIX sh script that prints a host's facts; feed it to `sh -s -- CERT_PATH...`."""

INVENTORY_TIMEOUT_S = 300.0

NO_SHELL_REASON = "account limited to SFTP: no command can run"
"""Why a fact that needs a command is missing on an account without a shell."""

# Facts that only a command can give: what an account limited to file transfer cannot read.
_COMMAND_FACTS = ("packages", "services", "listening", "disks", "cron", "certificates")


def inventory_command(cert_paths: Sequence[str] = ()) -> str:
    """The shell command that runs `INVENTORY_SCRIPT` fed on stdin, cert paths quoted for sh.

    Used as-is over SSH (the remote login shell parses it), so every path goes
    through `shlex.quote`: a path with spaces or quotes is one argument, never code.
    """
    return " ".join(["sh", "-s", "--", *(shlex.quote(p) for p in cert_paths)])


def collect_inventory(connector: HostConnector, cert_paths: Sequence[str] = ()) -> Inventory:
    """The facts of the connector's host: one run of INVENTORY_SCRIPT, or its files alone.

    Certificate paths are host paths: a local host standing in a folder
    (`root`) has them read under that folder and shown as configured, and
    its other facts are those of the folder (`root_inventory`), never the
    worker's machine. Raises
    ConnectorError when the host cannot be reached or the script printed
    nothing at all (a partial output is parsed: its gaps become `unreadable`).
    """
    if not connector.has_shell():
        return inventory_from_files(connector.name, connector.read_file, NO_SHELL_REASON)
    result = connector.run(
        inventory_command([connector.host_path(path) for path in cert_paths]),
        stdin=INVENTORY_SCRIPT.encode("utf-8"),
        timeout_s=INVENTORY_TIMEOUT_S,
    )
    if not result.stdout.strip():
        raise PermanentConnectorError(
            f"inventory script printed nothing (exit status {result.exit_status}): "
            f"{result.stderr_tail()}",
            host=connector.name,
        )
    inventory = parse_inventory(connector.name, result.stdout.decode("utf-8", "replace"))
    root = connector.host_path("/")
    inventory = _shown_as_configured(inventory, root)
    if root != "/":  # a local host in a folder: its root's facts, never the worker's own
        inventory = root_inventory(connector.name, Path(root), inventory)
    return inventory


def _shown_as_configured(inventory: Inventory, root: str) -> Inventory:
    """Certificate paths as configured (`/etc/ssl/x.pem`), not as read under a local root.

    The other facts of such a host are read from its root (`inventory_root`).
    """
    if root == "/":
        return inventory

    def shown(text: str) -> str:
        return text.replace(root + "/", "/").replace(root, "/")

    certificates = [c.model_copy(update={"path": shown(c.path)}) for c in inventory.certificates]
    unreadable = [
        shown(note) if note.startswith("certificates:") else note for note in inventory.unreadable
    ]
    return inventory.model_copy(update={"certificates": certificates, "unreadable": unreadable})


def inventory_from_files(
    host: str,
    read_file: Callable[[str], bytes],
    why: str,
    now: datetime | None = None,
) -> Inventory:
    """The inventory an account without a shell allows (e.g. SFTP-only): files only.

    `read_file(path)` reads a small file on the host and raises OSError or a
    HandoverError when it cannot. OS release, hostname, kernel and users come
    from files; every fact that needs a command is recorded in `unreadable`
    as "fact: WHY", so the report shows the gap instead of an empty list.
    The files are framed as the script would print them and go through the
    same parser, so both paths give the same kind of Inventory.
    """
    out: list[str] = []

    def dump(path: str) -> bool:
        try:
            text = read_file(path).decode("utf-8", "replace")
        except Exception:  # unreadable is a finding, not an error
            return False
        out.extend("|" + line for line in text.splitlines())
        return True

    def first_line(path: str) -> str:
        try:
            return read_file(path).decode("utf-8", "replace").strip().splitlines()[0]
        except Exception:
            return ""

    out.append(f"{MARKER}section os_release==")
    if not dump("/etc/os-release") and not dump("/usr/lib/os-release"):
        out.append(f"{MARKER}unreadable os_release: no readable os-release file==")
    out.append(f"{MARKER}section system==")
    out.append(f"kernel={first_line('/proc/sys/kernel/osrelease')}")
    out.append(f"hostname={first_line('/etc/hostname')}")
    out.append(f"{MARKER}section users==")
    if not dump("/etc/passwd"):
        out.append(f"{MARKER}unreadable users: /etc/passwd: not readable==")
    for fact in _COMMAND_FACTS:
        out.append(f"{MARKER}section {fact}==")
        out.append(f"{MARKER}unreadable {fact}: {why}==")
    out.append(f"{MARKER}end==")
    return parse_inventory(host, "\n".join(out) + "\n", now)
