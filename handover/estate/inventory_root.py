"""The inventory of a `local` host that stands in a folder: what its root says, nothing else.

A local host whose `root` is not `/` (the demo's sandbox hosts, a mounted
image of a client's disk) shares the machine of the worker: `hostname`,
`dpkg-query`, `ss` and `df` would describe that machine, so three sandbox
hosts would report the same name, the same packages and the worker's own
ports. A report that says so would say more than what was seen. So the
facts of such a host are read from files under its root only: os-release,
`etc/hostname`, `etc/passwd`, the crontabs, the package database
(`var/lib/dpkg/status`, `lib/apk/db/installed`); facts only a running
system gives (kernel, services, listening ports, disks) are recorded as not
measured, with the reason. Certificates were already read under the root
by the script and are kept from its run.

Files are read without following a symbolic link out of the root: a link
inside the sandbox pointing at `/etc/passwd` must not bring the worker's
accounts into the client's report.
"""

from __future__ import annotations

import os
from pathlib import Path

from handover.estate.inventory import Inventory
from handover.estate.inventory_parser import MARKER, parse_inventory

__all__ = ["NOT_MEASURED", "root_inventory"]

NOT_MEASURED = "not measured: a local host standing in a folder runs nothing of its own"
MAX_FILE_BYTES = 64 * 1024 * 1024  # a dpkg status file is a few MiB
_CRON_FILES = ("etc/crontab",)
_CRON_DIRS = ("etc/cron.d", "etc/crontabs", "var/spool/cron/crontabs")
_RUNTIME_FACTS = ("services", "listening", "disks")


def _read(root: Path, relpath: str) -> str | None:
    """A file under `root` as text, or None: absent, unreadable, too large or leading out."""
    path = root / relpath
    try:
        if not path.resolve().is_relative_to(root.resolve()):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        return None
    return data.decode("utf-8", "replace")


def _framed(text: str) -> list[str]:
    return ["|" + line for line in text.splitlines()]


def _dpkg_packages(status: str) -> list[str]:
    """`ii<TAB>name<TAB>version` per installed package of a dpkg status file."""
    rows: list[str] = []
    for stanza in status.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        name, version = fields.get("Package"), fields.get("Version", "")
        if name and fields.get("Status", "").endswith(" installed"):
            rows.append(f"ii\t{name}\t{version}")
    return rows


def _apk_packages(installed: str) -> list[str]:
    rows: list[str] = []
    name = ""
    for line in installed.splitlines():
        if line.startswith("P:"):
            name = line[2:]
        elif line.startswith("V:") and name:
            rows.append(f"ii\t{name}\t{line[2:]}")
    return rows


def _packages(root: Path) -> list[str]:
    status = _read(root, "var/lib/dpkg/status")
    if status is not None:
        return [f"{MARKER}meta manager dpkg==", *_dpkg_packages(status)]
    installed = _read(root, "lib/apk/db/installed")
    if installed is not None:
        return [f"{MARKER}meta manager apk==", *_apk_packages(installed)]
    return [f"{MARKER}unreadable packages: no package database under the host's root=="]


def _cron(root: Path) -> list[str]:
    names = list(_CRON_FILES)
    for folder in _CRON_DIRS:
        try:
            entries = sorted(os.listdir(root / folder))
        except OSError:
            continue
        names.extend(f"{folder}/{entry}" for entry in entries)
    out: list[str] = []
    for relpath in names:
        text = _read(root, relpath)
        if text is not None:
            out.append(f"{MARKER}file /{relpath}==")
            out.extend(_framed(text))
    return out


def root_inventory(host: str, root: Path, script: Inventory) -> Inventory:
    """The inventory of `host` from the files under `root`; certificates from `script`'s run."""
    out: list[str] = [f"{MARKER}section os_release=="]
    release = _read(root, "etc/os-release") or _read(root, "usr/lib/os-release")
    if release is None:
        out.append(f"{MARKER}unreadable os_release: no readable os-release under the root==")
    else:
        out.extend(_framed(release))
    hostname = (_read(root, "etc/hostname") or "").strip().splitlines()
    out += [f"{MARKER}section system==", f"hostname={hostname[0] if hostname else ''}"]
    out += [f"{MARKER}section packages==", *_packages(root)]
    for fact in _RUNTIME_FACTS:
        out += [f"{MARKER}section {fact}==", f"{MARKER}unreadable {fact}: {NOT_MEASURED}=="]
    passwd = _read(root, "etc/passwd")
    out.append(f"{MARKER}section users==")
    if passwd is None:
        out.append(f"{MARKER}unreadable users: no readable etc/passwd under the root==")
    else:
        out.extend(_framed(passwd))
    out += [f"{MARKER}section cron==", *_cron(root), f"{MARKER}section certificates=="]
    out.append(f"{MARKER}end==")
    facts = parse_inventory(host, "\n".join(out) + "\n", script.collected_at)
    kernel_note = f"kernel: {NOT_MEASURED}"
    unreadable = [
        *facts.unreadable,
        kernel_note,
        *(note for note in script.unreadable if note.startswith("certificates:")),
    ]
    return facts.model_copy(
        update={"certificates": script.certificates, "unreadable": list(dict.fromkeys(unreadable))}
    )
