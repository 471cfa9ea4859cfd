"""Provider access: installed at implementation, revoked at exit, the revocation proven."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff
from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from handover.actor import actor
from handover.connectors.base import HostConnector
from handover.contract.loader import load_playbook
from handover.contract.perimeter import Host
from handover.errors import PermanentConnectorError
from handover.estate.access import (
    AccessRecord,
    account_authorized_keys,
    install_provider_keys,
    remove_provider_keys,
    verify_key_refused,
)
from handover.secrets.references import resolve_secret
from handover.sshkeys import find_public_key, parse_public_key
from tasks.hosts import host_session
from tasks.runtime import only_transient


class ProviderAccessInstalled(AccessRecord):
    """The install record of one account, named by the account it opens."""

    account: str

    @model_serializer(mode="wrap")
    def _account_first(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The account leads the record: the exit report's tables show it as the first column."""
        data: dict[str, Any] = handler(self)
        return {"account": data.pop("account"), **data}


class ProviderAccessRevoked(ProviderAccessInstalled):
    """The removal record of one account, with the proof that the key no longer works."""

    keys_left_in_file: int = 0
    # True once a login with the provider key was refused (SSH hosts with a verify_key);
    # absent when no login was tried.
    login_refused: bool | None = Field(default=None, exclude_if=lambda value: value is None)


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
def install_access(playbook_path: str, index: int) -> ProviderAccessInstalled:
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
    return ProviderAccessInstalled(account=access.account, **record.model_dump())


@task(
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_condition_fn=only_transient,
    cache_policy=NO_CACHE,
    task_run_name="revoke provider access #{index}",
)
def revoke_access(playbook_path: str, index: int) -> ProviderAccessRevoked:
    """Remove exactly the contract's keys from one account, then prove the key is refused."""
    playbook = load_playbook(Path(playbook_path))
    access = playbook.security.provider_access[index]
    host = playbook.host(access.host)
    with host_session(playbook, host) as connector:
        path = authorized_keys_path(host, connector, access.account)
        record = remove_provider_keys(connector, path, playbook.contract_id, actor=actor())
        remaining = connector.read_file(path) if record.sha256_after else b""
    still_there = {
        found[1].blob
        for line in remaining.decode("utf-8", "replace").splitlines()
        if (found := find_public_key(line)) is not None
    }
    leftover = [key for key in access.public_keys if parse_public_key(key).blob in still_there]
    if leftover:
        raise PermanentConnectorError(
            f"{access.account}: {len(leftover)} provider key(s) still in {path}", host=access.host
        )
    login_refused = None
    if host.transport == "ssh" and access.verify_key:
        assert host.address is not None
        known_hosts = playbook.known_hosts_file()
        refused = verify_key_refused(
            host.address, host.port, access.account, resolve_secret(access.verify_key), known_hosts
        )
        if not refused:
            raise PermanentConnectorError(
                f"{access.account}: the provider key still logs in after removal", host=access.host
            )
        login_refused = True
    return ProviderAccessRevoked(
        account=access.account, **record.model_dump(), login_refused=login_refused
    )
