"""A human confirms the SSH host keys of first contact before handover trusts them."""

from __future__ import annotations

from prefect.artifacts import create_markdown_artifact
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput

from flows._phase import PhaseRun, StepFailed
from handover.checklist.model import Evidence
from handover.connectors.ssh.first_contact import PresentedHostKey
from tasks.host_keys import first_contact_keys, pin_host_keys

CONFIRM_TIMEOUT_S = 24 * 3600


class HostKeysConfirmation(RunInput):
    """The operator's answer: do the keys shown match what the client says of its hosts?"""

    confirmed: bool
    confirmed_by: str


def fingerprints_table(rows: list[PresentedHostKey]) -> str:
    lines = [
        "| host | address | presented now | in the playbook | agrees |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.host} | {row.address} | `{row.presented}` | "
            f"`{row.playbook or '—'}` | {row.agrees or 'not pinned'} |"
        )
    return "\n".join(lines)


def show_first_contact_keys(contract: str, table: str) -> None:
    """The keys as the `<contract>-host-keys` artifact, with how the client checks them."""
    create_markdown_artifact(
        f"## Host keys of first contact\n\n{table}\n\n"
        "Compare each fingerprint with what the client reads on the host "
        "(`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`), then answer in this flow run.",
        key=f"{contract}-host-keys",
        description="SSH host keys awaiting confirmation",
    )


def confirm_and_pin(run: PhaseRun, playbook_path: str) -> list[Evidence]:
    """Show the first-contact keys, wait for a human, then pin them in the contract known_hosts."""
    rows = first_contact_keys(playbook_path)
    if not rows:
        return []
    table = fingerprints_table(rows)
    show_first_contact_keys(run.contract, table)
    mismatched = [r for r in rows if r.agrees == "False"]
    if mismatched:
        raise StepFailed(
            "host key differs from the playbook for "
            + ", ".join(
                f"{r.host} (presented {r.presented}, pinned {r.playbook})" for r in mismatched
            )
        )
    answer = pause_flow_run(
        wait_for_input=HostKeysConfirmation.with_initial_data(
            description=f"Confirm the SSH host keys of {run.contract}:\n\n{table}",
            confirmed=False,
            confirmed_by="",
        ),
        timeout=CONFIRM_TIMEOUT_S,
    )
    if answer is None or not answer.confirmed:
        raise StepFailed("host keys not confirmed by a human: nothing was pinned")
    pinned = pin_host_keys(playbook_path, rows)
    return [
        run.write_json(
            "host-keys.json",
            {"confirmed_by": answer.confirmed_by, "keys": rows, "known_hosts": pinned},
            "human",
        )
    ]
