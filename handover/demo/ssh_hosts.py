"""The demo's hosts reached over SSH, as a client's machines are: one sshd on loopback each.

When the system has OpenSSH's server, `handover demo` starts one
unprivileged sshd per sandbox host (its own host key, its own
authorized_keys holding the demo's login key, its config in the demo's
private folder, the account running the demo), and runs the contract
through a playbook whose hosts are `ssh` hosts with pinned host keys. The
host keys are kept under `.handover/demo/sshd/<host>/` from one run to the
next, as a machine keeps its identity; the ports are new on each run, so
each run meets its hosts for the first time and pins them.

What an sshd on loopback serves is this machine: the datasets and
certificate folders of the playbook are the sandbox trees' absolute paths,
and each host's inventory describes this machine (the three hosts are the
same machine, reached three times), which the demo says. The provider's
access is not installed: it would add a key to the real `authorized_keys`
of the account running the demo.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from handover.demo.sshd import LoopbackSshd

__all__ = ["demo_sshd", "ssh_playbook"]

SSHD_FOLDER = "sshd"


@contextlib.contextmanager
def demo_sshd(demo_root: Path, names: Sequence[str]) -> Iterator[dict[str, LoopbackSshd]]:
    """One sshd per host name, started for the block and stopped after it, whatever happens.

    A Ctrl-C (KeyboardInterrupt) leaves the block like any error: every sshd
    started so far is stopped. Each runs in its own session, so the
    terminal's signal reaches the demo, which stops them, and not them first.
    """
    user = pwd.getpwuid(os.geteuid()).pw_name
    folder = demo_root / SSHD_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o755)  # sshd reads its files as the account, which owns them
    started: dict[str, LoopbackSshd] = {}
    try:
        for name in names:
            host = LoopbackSshd(name, folder / name, user=user, reuse_keys=True)
            host.start()
            started[name] = host
        yield started
    finally:
        for host in started.values():
            with contextlib.suppress(Exception):
                host.stop()


def _absolute(root: str, path: str) -> str:
    """A host path of the sandbox as this machine sees it: under the host's root folder."""
    return str(Path(root) / path.lstrip("/"))


def ssh_playbook(
    data: Mapping[str, Any], roots: Mapping[str, str], hosts: Mapping[str, LoopbackSshd]
) -> dict[str, Any]:
    """The demo playbook (`data`, as YAML loads it) with its local hosts turned into ssh hosts.

    `roots`: each host's sandbox folder (absolute); `hosts`: the started
    sshd of each. Dataset paths, certificate folders and the dump command
    are rewritten to the sandbox's absolute paths; host keys are pinned;
    the provider's access entries are dropped (see the module).
    """
    playbook = {**data}
    perimeter = dict(data["perimeter"])
    new_hosts = []
    for entry in perimeter["hosts"]:
        name = entry["name"]
        sshd = hosts[name]
        root = roots[name]
        new_hosts.append(
            {
                "name": name,
                "transport": "ssh",
                "address": sshd.address,
                "port": sshd.port,
                "user": sshd.user,
                "host_key": sshd.host_key_fingerprint,
                "credential": sshd.credential_ref,
                "auth": "key",
                "cert_paths": [_absolute(root, p) for p in entry.get("cert_paths", [])],
                "tags": [*entry.get("tags", []), "sshd-loopback"],
            }
        )
    datasets = []
    for entry in perimeter.get("datasets", []):
        dataset = dict(entry)
        host_root = roots.get(dataset.get("host") or "")
        if host_root is not None and dataset.get("paths"):
            dataset["paths"] = [_absolute(host_root, p) for p in dataset["paths"]]
        if host_root is not None and dataset.get("dump"):
            dump = dict(dataset["dump"])
            # The demo's dump reads a file relative to the host's root (a local host runs
            # it there); over SSH it runs in the account's home, so it goes there first.
            dump["command"] = f"cd {shlex.quote(host_root)} && {dump['command']}"
            dataset["dump"] = dump
        datasets.append(dataset)
    perimeter["hosts"] = new_hosts
    perimeter["datasets"] = datasets
    playbook["perimeter"] = perimeter
    security = dict(data.get("security", {}))
    security["provider_access"] = []
    playbook["security"] = security
    documentation = data.get("documentation")
    if documentation:
        sources = []
        for entry in documentation.get("sources", []):
            source = dict(entry)
            source_root = roots.get(source.get("host") or "")
            if source_root is not None and source.get("path"):
                source["path"] = _absolute(source_root, source["path"])
            sources.append(source)
        playbook["documentation"] = {**documentation, "sources": sources}
    return playbook
