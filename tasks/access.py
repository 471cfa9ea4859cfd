"""Provider access: installed at implementation, revoked at exit, the revocation proven."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from handover.actor import actor
from handover.connectors.base import HostConnector
from handover.contract.loader import load_playbook
from handover.contract.perimeter import Host
from handover.estate.access import (
    account_authorized_keys,
    install_provider_keys,
    remove_provider_keys,
    verify_key_refused,
)
from handover.secrets.references import resolve_secret
from handover.state.home import contract_dir
from tasks.hosts import host_session
from tasks.runtime import only_transient


def sandboxed(host: Host) -> bool:
    return host.transport == "local" and (host.root or "/") != "/"


def authorized_keys_path(host: Host, connector: HostConnector, account: str) -> str:
    """The account's authorized_keys: from the host's passwd, or by convention on a local root."""
    if sandboxed(host):
        home = "/root" if account == "root" else f"/home/{account}"
        return f"{home}/.ssh/authorized_keys"
    return account_authorized_keys(connector, account)


@task(
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_condition_fn=only_transient,
    cache_policy=NO_CACHE,
    task_run_name="install provider access #{index}",
)
def install_access(playbook_path: str, index: int) -> dict[str, Any]:
    """Add the provider's keys (marked with the contract) to one account; idempotent."""
    playbook = load_playbook(Path(playbook_path))
    access = playbook.security.provider_access[index]
    host = playbook.host(access.host)
    with host_session(playbook, host) as connector:
        path = authorized_keys_path(host, connector, access.account)
        record = install_provider_keys(
            connector,
            path,
            list(access.public_keys),
            playbook.contract_id,
            # A sandbox root stands for another machine: its accounts are not ours to chown to.
            owner=None if sandboxed(host) else access.account,
            actor=actor(),
        )
    return {"account": access.account, **record.model_dump(mode="json")}


@task(
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_condition_fn=only_transient,
    cache_policy=NO_CACHE,
    task_run_name="revoke provider access #{index}",
)
def revoke_access(playbook_path: str, index: int) -> dict[str, Any]:
    """Remove exactly the contract's keys from one account, then prove the key is refused."""
    playbook = load_playbook(Path(playbook_path))
    access = playbook.security.provider_access[index]
    host = playbook.host(access.host)
    with host_session(playbook, host) as connector:
        path = authorized_keys_path(host, connector, access.account)
        record = remove_provider_keys(connector, path, playbook.contract_id, actor=actor())
        remaining = connector.read_file(path) if record.sha256_after else b""
    leftover = [key for key in access.public_keys if key.split()[1].encode() in remaining]
    if leftover:
        from handover.errors import PermanentConnectorError

        raise PermanentConnectorError(
            f"{access.account}: {len(leftover)} provider key(s) still in {path}", host=access.host
        )
    proof: dict[str, Any] = {"keys_left_in_file": 0}
    if host.transport == "ssh" and access.verify_key:
        assert host.address is not None
        known_hosts = contract_dir(playbook.contract_id) / "known_hosts"
        refused = verify_key_refused(
            host.address, host.port, access.account, resolve_secret(access.verify_key), known_hosts
        )
        if not refused:
            from handover.errors import PermanentConnectorError

            raise PermanentConnectorError(
                f"{access.account}: the provider key still logs in after removal", host=access.host
            )
        proof["login_refused"] = True
    return {"account": access.account, **record.model_dump(mode="json"), **proof}
