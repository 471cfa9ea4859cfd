"""What every task shares: who acts, which flow run, secrets Prefect keeps, retry rules.

Importing this module registers the `prefect-secret:` credential scheme with
the core, so a playbook may name a Prefect Secret block; its value is read
inside the task that needs it and never returned.
"""

from __future__ import annotations

import getpass
import os
import socket
from typing import Any

from prefect.blocks.system import Secret as PrefectSecretBlock
from prefect.client.orchestration import get_client

from handover._errors import SecretRefError, TransientConnectorError
from handover.secrets import register_resolver


def _resolve_prefect_secret(name: str) -> bytes:
    try:
        block = PrefectSecretBlock.load(name)
    except ValueError as exc:
        raise SecretRefError(f"prefect-secret:{name}: no such Secret block") from exc
    value: Any = block.get()
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


register_resolver("prefect-secret", _resolve_prefect_secret)


def actor() -> str:
    """Who acts: `HANDOVER_ACTOR`, else user@host of the worker."""
    return os.environ.get("HANDOVER_ACTOR") or f"{getpass.getuser()}@{socket.gethostname()}"


def flow_run_id() -> str | None:
    """The current flow run's id, for evidence (None outside a flow run)."""
    from prefect.runtime import flow_run

    run_id = flow_run.id
    return str(run_id) if run_id else None


def only_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry condition: retry timeouts and refused connections, never auth or usage errors."""
    try:
        state.result()
    except TransientConnectorError:
        return True
    except Exception:
        return False
    return False


def ensure_concurrency_limit(name: str, limit: int) -> None:
    """Create or update a global concurrency limit (one per client, for SSH sessions)."""
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name=name, limit=limit)
