"""Tasks that reach a contract's hosts: inventory, dataset snapshots, commands.

Tasks take references (playbook path, host and dataset names), load the
playbook and resolve credentials inside, and never return a secret. SSH
sessions of one contract share a Prefect global concurrency limit
`ssh-<contract>` so a contract never opens more sessions than agreed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency
from prefect.tasks import exponential_backoff

from handover.bundle.members import MemberTable
from handover.bundle.snapshot import snapshot_source
from handover.bundle.types import VolumeSource
from handover.connectors.base import HostConnector
from handover.connectors.datasets import dataset_source
from handover.connectors.factory import connect_host
from handover.contract.loader import load_playbook
from handover.contract.perimeter import Dataset, Host
from handover.contract.playbook import Playbook
from handover.estate.inventory import Inventory
from handover.estate.inventory_collect import collect_inventory
from tasks.runtime import only_transient

SSH_SESSIONS_PER_CONTRACT = 4


def ssh_limit_name(contract: str) -> str:
    return f"ssh-{contract}"


@contextlib.contextmanager
def host_session(playbook: Playbook, host: Host) -> Iterator[HostConnector]:
    """Connect to a host for the length of the block.

    An SSH host holds one of the contract's SSH slots meanwhile, and is
    trusted through the playbook's known_hosts (`Playbook.known_hosts_file`).
    """
    if host.transport != "ssh":
        with connect_host(host, playbook.contract_id) as connector:
            yield connector
        return
    known_hosts = playbook.known_hosts_file()
    with (
        concurrency(ssh_limit_name(playbook.contract_id), occupy=1),
        connect_host(host, playbook.contract_id, known_hosts=known_hosts) as connector,
    ):
        yield connector


@contextlib.contextmanager
def open_dataset(playbook: Playbook, dataset: Dataset) -> Iterator[VolumeSource]:
    """The dataset's VolumeSource, its host's session open (and SSH slot held) while in use."""
    if dataset.host is None:
        yield dataset_source(dataset, None, playbook.perimeter.s3)
        return
    with host_session(playbook, playbook.host(dataset.host)) as connector:
        yield dataset_source(dataset, connector, playbook.perimeter.s3)


@task(
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_condition_fn=only_transient,
    cache_policy=NO_CACHE,
    task_run_name="inventory {host_name}",
)
def inventory_host(playbook_path: str, host_name: str) -> Inventory:
    """Collect one host's facts (one script run per host; files alone on SFTP-only accounts)."""
    playbook = load_playbook(Path(playbook_path))
    host = playbook.host(host_name)
    with host_session(playbook, host) as connector:
        return collect_inventory(connector, host.cert_paths)


@task(
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_condition_fn=only_transient,
    cache_policy=NO_CACHE,
    task_run_name="snapshot {dataset_name}",
)
def snapshot_dataset(playbook_path: str, dataset_name: str) -> MemberTable:
    """Hash every file of a dataset without keeping a copy (the takeover baseline)."""
    playbook = load_playbook(Path(playbook_path))
    dataset = next(d for d in playbook.datasets if d.name == dataset_name)
    with open_dataset(playbook, dataset) as source:
        return snapshot_source(source)


@task(cache_policy=NO_CACHE, task_run_name="run on {host_name}")
def run_on_host(
    playbook_path: str, host_name: str, command: str, timeout_s: float = 120
) -> tuple[int, str]:
    """Run a command; returns exit status and the (text) output: for reports, never for secrets."""
    playbook = load_playbook(Path(playbook_path))
    host = playbook.host(host_name)
    with host_session(playbook, host) as connector:
        result = connector.run(command, timeout_s=timeout_s)
    return result.exit_status, result.stdout.decode("utf-8", "replace")
