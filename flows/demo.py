"""`handover demo`: a sandbox client estate taken over, run and handed back, end to end.

Builds (or reuses) three sandbox hosts under `.handover/demo/`, the demo
keys and a small credential vault, then runs the four phase flows against
the Prefect server, answers the client-acceptance step through the API
(standing in for the client), and ends with the commands a client runs
with standard tools alone.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from rich.console import Console

from flows.server import ServerInfo, auth_file
from handover.checklist.model import Checklist, ChecklistItem, Status
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.demo.credentials import prepare_vault
from handover.demo.estate import build_demo_estate
from handover.demo.incidents import record_demo_incidents
from handover.demo.keys import DemoKeys, make_demo_keys
from handover.phases import Phase
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


def run_demo(playbook_path: Path, server: ServerInfo) -> bool:
    """Run the demo lifecycle; True when all four phases completed."""
    from tasks.checklist import watch_checklists

    watch_checklists(print_item)
    started = time.monotonic()
    playbook = load_playbook(playbook_path)
    demo_root = handover_home() / "demo"

    _step(1, TOTAL_STEPS, "building the sandbox client estate (three hosts)")
    build_estate(demo_root)
    _step(
        2,
        TOTAL_STEPS,
        "keys: client age identity, provider backup key and signing key; credential vault",
    )
    keys = prepare_keys(demo_root, playbook.contract_id, server)
    if not run_phases_before_exit(str(playbook_path)):
        return False
    _step(
        6, TOTAL_STEPS, "reversibility flow (the client's acceptance is answered through the API)"
    )
    bundle = run_exit(playbook, str(playbook_path))
    if bundle is None:
        return False
    _step(7, TOTAL_STEPS, f"done in {time.monotonic() - started:.0f} s")
    print_client_commands(bundle, keys.client_key, server)
    return True


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


def run_phases_before_exit(path: str) -> bool:
    """Takeover, implementation and one operational run, each from scratch; False at a failure."""
    from flows.lifecycle import run_phase_flow

    for number, phase in enumerate((Phase.TAKEOVER, Phase.IMPLEMENTATION, Phase.OPERATIONAL), 3):
        _step(number, TOTAL_STEPS, f"{phase} flow")
        state = run_phase_flow(phase, path, pin_host_keys=False, fresh=True)
        if not state.is_completed():
            console.print(f"[red]{phase} ended {state.type.value}: {state.message}[/red]")
            return False
    return True


def run_exit(playbook: Playbook, path: str) -> Path | None:
    """The reversibility flow, the client's acceptance answered; the delivered bundle."""
    from flows.lifecycle import answer_acceptance_when_paused, drill_notice_date
    from flows.reversibility import ExitOutcome, reversibility

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
