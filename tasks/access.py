"""Provider access: installed at implementation, revoked at exit, the revocation proven.

The steps and their proof are `handover.estate.provider_access`; these tasks
load the entry, hold the host's session, and return the record.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from handover.actor import actor
from handover.contract.loader import load_playbook
from handover.estate.provider_access import (
    ProviderAccessInstalled,
    ProviderAccessRevoked,
    install_provider_access,
    prove_login_refused,
    revoke_provider_access,
)
from tasks.hosts import host_session
from tasks.runtime import only_transient


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
        return install_provider_access(connector, host, access, playbook.contract_id, actor())


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
        revoked = revoke_provider_access(connector, host, access, playbook.contract_id, actor())
    # The login is tried once the session is closed: it is a session of its own.
    return prove_login_refused(revoked, host, access, playbook.known_hosts_file())
