"""`handover demo`: a sandbox client estate taken over, run and handed back, end to end.

Builds (or reuses) three sandbox hosts under `.handover/demo/`, the demo
keys and a small credential vault, then runs the four phase flows against
the Prefect server, answers the client-acceptance step through the API
(standing in for the client), and ends with the commands a client runs
with standard tools alone.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

import yaml
from rich.console import Console

from flows.server import ServerInfo, auth_file
from handover.checklist.model import Checklist, ChecklistItem, Status
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.demo.credentials import prepare_vault
from handover.demo.estate import build_demo_estate
from handover.demo.incidents import record_demo_incidents
from handover.demo.keys import DemoKeys, make_demo_keys
from handover.demo.ssh_hosts import demo_sshd, ssh_playbook
from handover.demo.sshd import sshd_available
from handover.phases import Phase
from handover.state.atomic import write_atomic
from handover.state.home import handover_home

console = Console(highlight=False)


def _step(number: int, total: int, text: str) -> None:
    console.print(f"[bold cyan][{number}/{total}][/] {text}")


STATUS_MARKS = {"done": "[green]✓[/]", "failed": "[red]✗[/]", "waived": "[yellow]–[/]"}


def print_item(checklist: Checklist, item: ChecklistItem, previous: Status | None) -> None:
    """Progress: one line per checklist item as it ends."""
    mark = STATUS_MARKS.get(str(item.status))
    if mark is None:
        return
    reason = f" — {item.reason}" if item.reason and str(item.status) != "done" else ""
    console.print(f"      {mark} {item.id}: {item.title}{reason}", soft_wrap=True)


TOTAL_STEPS = 7
SSH_PLAYBOOK = "demo-ssh.yaml"  # the demo playbook with its hosts reached through sshd


def run_demo(playbook_path: Path, server: ServerInfo) -> bool:
    """Run the demo lifecycle; True when all four phases completed."""
    from tasks.checklist import watch_checklists

    watch_checklists(print_item)
    started = time.monotonic()
    demo_root = handover_home() / "demo"

    _step(1, TOTAL_STEPS, "building the sandbox client estate (three hosts)")
    build_estate(demo_root)
    # The sshd processes (if any) live for the whole run and stop at its end, Ctrl-C included.
    with contextlib.ExitStack() as stack:
        playbook_path, pin = reach_hosts(stack, demo_root, playbook_path)
        playbook = load_playbook(playbook_path)
        _step(
            2,
            TOTAL_STEPS,
            "keys: client age identity, provider backup key and signing key; credential vault",
        )
        keys = prepare_keys(demo_root, playbook.contract_id, server)
        if not run_phases_before_exit(str(playbook_path), pin=pin):
            return False
        _step(
            6,
            TOTAL_STEPS,
            "reversibility flow (the client's acceptance is answered through the API)",
        )
        bundle = run_exit(playbook, str(playbook_path))
        if bundle is None:
            return False
    _step(7, TOTAL_STEPS, f"done in {time.monotonic() - started:.0f} s")
    print_client_commands(bundle, keys.client_key, server)
    return True


def reach_hosts(
    stack: contextlib.ExitStack[bool | None], demo_root: Path, playbook_path: Path
) -> tuple[Path, bool]:
    """The playbook to run and whether takeover pins host keys: sshd on loopback, else local.

    With sshd, one sshd per host is started (stopped when `stack` closes)
    and the contract runs through a playbook whose hosts are ssh hosts; its
    takeover meets them for the first time and pins their keys.
    """
    if not sshd_available():
        console.print(
            "      no sshd on this system: the hosts stay local, each inventoried from its folder"
        )
        return playbook_path, False
    playbook = load_playbook(playbook_path)
    names = [h.name for h in playbook.hosts]
    hosts = stack.enter_context(demo_sshd(demo_root, names))
    roots = {h.name: str(Path(h.root or "/").absolute()) for h in playbook.hosts}
    data = yaml.safe_load(playbook_path.read_text(encoding="utf-8"))
    generated = demo_root / SSH_PLAYBOOK
    text = yaml.safe_dump(ssh_playbook(data, roots, hosts), sort_keys=False, allow_unicode=True)
    write_atomic(generated, text.encode("utf-8"))
    for host in hosts.values():
        console.print(
            f"      {host.name}: ssh://{host.user}@{host.address}:{host.port} "
            f"(sshd on loopback, host key {host.host_key_fingerprint})"
        )
    console.print(
        "      the three hosts are this machine reached through sshd: their inventories "
        "describe it; the provider's access is not installed (it would change this "
        f"account's own authorized_keys); playbook: {generated}",
        soft_wrap=True,
    )
    return generated, True


def build_estate(demo_root: Path) -> None:
    """The three sandbox hosts, built once and reused afterwards."""
    estate = build_demo_estate(demo_root)
    for host in estate.hosts:
        how = "reused" if host.reused else "built"
        console.print(f"      {host.name}: {host.files:,} files, {host.bytes / 1e6:.1f} MB ({how})")


def prepare_keys(demo_root: Path, contract: str, server: ServerInfo) -> DemoKeys:
    """The demo keys and the contract's credential vault."""
    keys = make_demo_keys(demo_root / "keys")
    # The demo answers the client's acceptance itself, signed with the demo client's
    # key, which the demo playbook declares in reversibility.client_signers.
    os.environ.setdefault("HANDOVER_TEST_SIGNER_KEY", str(keys.client_signing_key))
    entries = prepare_vault(contract)
    record_demo_incidents(contract)  # the hotline's incidents, for the operational run
    console.print(f"      keys in {keys.folder}; vault of {contract}: {entries} credentials")
    console.print(f"      Prefect UI: [link={server.ui_url}]{server.ui_url}[/link]")
    return keys


def run_phases_before_exit(path: str, *, pin: bool = False) -> bool:
    """Takeover, implementation and one operational run, each from scratch; False at a failure.

    `pin`: the takeover shows the host keys of first contact and waits for a
    person to confirm them; the demo answers, after checking that each key
    presented is the one of the sshd it started (`confirm_demo_host_keys`).
    """
    from flows.lifecycle import run_phase_flow

    for number, phase in enumerate((Phase.TAKEOVER, Phase.IMPLEMENTATION, Phase.OPERATIONAL), 3):
        _step(number, TOTAL_STEPS, f"{phase} flow")
        pinning = pin and phase == Phase.TAKEOVER
        stop = threading.Event()
        if pinning:
            confirm_demo_host_keys(Path(path), stop)
        try:
            state = run_phase_flow(phase, path, pin_host_keys=pinning, fresh=True)
        finally:
            stop.set()
        if not state.is_completed():
            console.print(f"[red]{phase} ended {state.type.value}: {state.message}[/red]")
            return False
    return True


def confirm_demo_host_keys(playbook_path: Path, stop: threading.Event) -> threading.Thread:
    """Answer the takeover's host-key confirmation, as the client's referent would.

    The keys the hosts present now are compared with the fingerprints the
    playbook pins (those of the sshd the demo started and generated keys
    for); the answer is yes only when every one agrees, and says it was the
    demo's.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.flow_runs import resume_flow_run

    from handover.connectors.ssh.first_contact import presented_host_keys

    playbook = load_playbook(playbook_path)
    # The takeover's only pause is this one; its run is found by the contract's tags.
    paused_takeover = FlowRunFilter(
        tags=FlowRunFilterTags(all_=[f"contract:{playbook.contract_id}", "phase:takeover"]),
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])),
    )

    def watch() -> None:
        while not stop.is_set():
            with get_client(sync_client=True) as client:
                runs = client.read_flow_runs(flow_run_filter=paused_takeover)
            for paused in runs:
                rows = presented_host_keys(playbook.hosts)
                agree = bool(rows) and all(row.agrees == "True" for row in rows)
                resume_flow_run(
                    paused.id,
                    run_input={
                        "confirmed": agree,
                        "confirmed_by": "handover demo (automatic: every key presented is the "
                        "one of the sshd the demo started)"
                        if agree
                        else "handover demo (automatic: a key differs, not confirmed)",
                    },
                )
                return
            stop.wait(1)

    thread = threading.Thread(target=watch, name="demo-host-keys", daemon=True)
    thread.start()
    return thread


def run_exit(playbook: Playbook, path: str) -> Path | None:
    """The reversibility flow, the client's acceptance answered; the delivered bundle."""
    from flows._phase import ExitOutcome
    from flows.lifecycle import answer_acceptance_when_paused, drill_notice_date
    from flows.reversibility import reversibility

    stop = threading.Event()
    answer_acceptance_when_paused(Path(path), stop)
    try:
        notice = drill_notice_date(Path(path))
        state = reversibility(path, notice, fresh=True, return_state=True)
    finally:
        stop.set()
    if not state.is_completed():
        console.print(f"[red]reversibility ended {state.type.value}: {state.message}[/red]")
        return None
    outcome = state.result()
    if not isinstance(outcome, ExitOutcome) or outcome.bundle is None:
        console.print("[red]reversibility completed without delivering a bundle[/red]")
        return None
    return Path(outcome.bundle)


def print_client_commands(bundle: Path, client_key: Path, server: ServerInfo) -> None:
    volumes = sorted(p.name for p in (bundle / "volumes").glob("*.tar.age"))
    console.print()
    console.print(f"[bold]Bundle:[/]     {bundle}")
    console.print(f"[bold]Client key:[/] {client_key}")
    console.print(f"[bold]Prefect UI:[/] {server.ui_url}  (flow runs, checklist artifacts, events)")
    console.print(f"      UI login: paste the auth string from {auth_file()}")
    console.print()
    console.print("[bold]What the client runs, with standard tools only:[/]")
    first = volumes[0] if volumes else "0001-....tar.age"
    lines = [
        f"cd {bundle}",
        "sha256sum -c SHA256SUMS",
        'echo "provider $(cat provider.pub)" > allowed_signers',
        "ssh-keygen -Y verify -f allowed_signers -I provider -n handover-bundle"
        " -s SHA256SUMS.sig < SHA256SUMS",
        f"mkdir -p out/volume out/index && age -d -i {client_key} volumes/{first}"
        " | tar -x -C out/volume",
        "(cd out/volume && sha256sum -c SHA256SUMS)",
        f"age -d -i {client_key} index.tar.age | tar -x -C out/index"
        "   # MANIFEST.json, documents, credentials.kdbx",
    ]
    for line in lines:
        console.print(f"  {line}", soft_wrap=True)
    console.print(
        f"\n(README.txt in the bundle says the same for every volume: {len(volumes)} volumes.)"
    )
