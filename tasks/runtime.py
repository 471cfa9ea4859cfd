"""What every task shares: which flow run, secrets Prefect keeps, retry rules.

Importing this module registers, with the core, the `prefect-secret:`
credential scheme (a playbook may name a Prefect Secret block) and the
prefect-aws AwsCredentials blocks that `perimeter.s3.aws_credentials_block`
names; values are read inside the task that needs them and never returned.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, cast
from uuid import UUID

from prefect import Task
from prefect.blocks.system import Secret as PrefectSecretBlock
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import State, TaskRun

from handover.actor import actor
from handover.connectors.s3.client import S3Credentials, register_credentials_provider
from handover.errors import SecretRefError, TransientConnectorError
from handover.secrets.references import Secret, register_resolver


def _resolve_prefect_secret(name: str) -> bytes:
    try:
        # Resolved inside synchronous tasks, where Prefect's async_dispatch loads the block
        # synchronously; its typing still offers a coroutine.
        block = cast("PrefectSecretBlock[Any]", PrefectSecretBlock.load(name))
    except ValueError as exc:
        raise SecretRefError(f"prefect-secret:{name}: no such Secret block") from exc
    value: Any = block.get()
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


register_resolver("prefect-secret", _resolve_prefect_secret)


_scheduled_runs: dict[str, bool] = {}


def run_actor() -> str:
    """Who acts in this flow run: the declared operator, or "schedule" for a scheduled run.

    `HANDOVER_ACTOR` (set by `handover run --as`, or for a worker) names a
    person; a run the Prefect scheduler created has no person behind it and
    says so, with its deployment, rather than carry the worker's login.
    """
    if os.environ.get("HANDOVER_ACTOR"):
        return actor()
    run_id = flow_run_id()
    if run_id is not None:
        if run_id not in _scheduled_runs:
            try:
                with get_client(sync_client=True) as client:
                    run = client.read_flow_run(UUID(run_id))
                _scheduled_runs[run_id] = bool(run.auto_scheduled)
            except Exception:  # no server answer: the login is still a true name
                _scheduled_runs[run_id] = False
        if _scheduled_runs[run_id]:
            from prefect.runtime import deployment, flow_run

            return f"schedule ({deployment.name or flow_run.flow_name})"
    return actor()


def flow_run_id() -> str | None:
    """The current flow run's id, for evidence (None outside a flow run)."""
    from prefect.runtime import flow_run

    run_id = flow_run.id
    return str(run_id) if run_id else None


def only_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry condition: retry timeouts and refused connections, never auth or usage errors."""
    try:
        state.result()
    except TransientConnectorError:
        return True
    except Exception:
        return False
    return False


def ensure_concurrency_limit(name: str, limit: int) -> None:
    """Create a global concurrency limit if it does not exist; never change an existing one.

    Two first runs may race to create it: the loser's 409 means it exists,
    which is all we wanted. An operator who changed the limit in the UI
    keeps their value (an upsert would reset it on every run).
    """
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
            return
        except ObjectNotFound:
            pass
        with contextlib.suppress(ObjectAlreadyExists):  # created meanwhile by another run
            client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=name, limit=limit)
            )


def _aws_credentials_block(name: str) -> S3Credentials:
    """`perimeter.s3.aws_credentials_block`: a prefect-aws AwsCredentials block, read here."""
    from prefect_aws import AwsCredentials

    try:
        block = AwsCredentials.load(name)
    except ValueError as exc:
        raise SecretRefError(
            f"aws_credentials_block {name!r}: no such AwsCredentials block"
        ) from exc
    if not block.aws_access_key_id or block.aws_secret_access_key is None:
        raise SecretRefError(f"aws_credentials_block {name!r}: holds no access key")
    token = block.aws_session_token
    return S3Credentials(
        access_key_id=block.aws_access_key_id,
        secret_access_key=Secret(block.aws_secret_access_key.get_secret_value().encode()),
        session_token=Secret(token.get_secret_value().encode()) if token else None,
        region=block.region_name,
    )


register_credentials_provider(_aws_credentials_block)
