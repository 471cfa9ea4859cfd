"""`handover report PLAYBOOK`: the contract's signed audit report, at any time, without Prefect.

Reads the contract's folder only (checklists, audit log, signed checkpoints,
exit state), verifies the trail against the playbook's signing key, and
writes `audit-report-<contract>-<UTC time>.md` and `.html`, the Markdown's
SSH signature `.md.sig` (namespace `handover-report`) and an
`.allowed_signers` line naming the provider's key, so anyone checks the
report with OpenSSH alone:

    ssh-keygen -Y verify -f X.allowed_signers -I provider -n handover-report \
        -s X.md.sig < X.md

The allowed-signers file beside the report only says which key signed; an
auditor compares its fingerprint with the key the contract names (the
provider's `provider.pub`, the bundle's signature) before trusting it.

A trail that is not intact does not stop the report: the report is how the
problem is shown, so the command writes it, warns, and exits 0.

Reading a checklist completes a change a crash left half done (the store's
write-ahead record, see `handover.checklist.store`), as every reader does.

No PDF, on purpose. weasyprint needs pango (a system package). fpdf2
(2.8.9, pure Python) raises NotImplementedError on our HTML: a `<code>`
inside a table cell, which every table here has; its core fonts are also
Latin-1 only. xhtml2pdf (0.2.28) renders the report acceptably in about
0.4 s, but it is not pure Python (lxml, through svglib) and brings eleven
packages, about 30 MB (reportlab, lxml, pypdf, svglib, html5lib...): too
heavy for a printout any browser makes from the HTML ("Print to PDF").
The Markdown is the signed form; the HTML says the same thing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from handover.actor import actor
from handover.bundle.readme import SIGNER_IDENTITY
from handover.bundle.sshsig import sign
from handover.checklist.model import Checklist
from handover.checklist.store import ChecklistStore
from handover.checklist.trail import verify_trail
from handover.cli import app, console, handles_errors
from handover.contract.keys import signing_key
from handover.contract.loader import load_playbook
from handover.documents.audit_report import REPORT_NAMESPACE, audit_report
from handover.errors import HandoverError
from handover.evidence import refresh_for_reading
from handover.exit.progress import AcceptanceRecord, ExitProgress
from handover.phases import PHASES, Phase
from handover.state.atomic import write_atomic
from handover.state.layout import ContractPaths


@app.command("report")
@handles_errors
def report_command(
    playbook_path: Annotated[Path, typer.Argument(metavar="PLAYBOOK", help="The playbook.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder to write into (default: the contract's reports/)."),
    ] = None,
) -> None:
    """Write the contract's audit report (Markdown, HTML), signed with the provider's key."""
    playbook = load_playbook(playbook_path)
    contract = playbook.contract_id
    key = signing_key(playbook)  # first: no key, no report (an unsigned one proves nothing)
    store = ChecklistStore()
    current = [store.current(contract, phase) for phase in PHASES]  # newest operational period
    checklists: list[Checklist] = [store.load(contract, name) for name in current if name]
    paths = ContractPaths(contract)
    # The exit's records as the workers left them, not a stale copy of this machine's.
    refresh_for_reading(contract, paths.root, [Phase.REVERSIBILITY.value])
    checkpoints, _unreadable = store.checkpoints(contract).read()  # in the trail
    trail = verify_trail(
        store,
        contract,
        key.public_line(),
        f"the playbook's signing key ({playbook.reversibility.signing_key})",
    )
    acceptance: AcceptanceRecord | None = None
    acceptance_problem: str | None = None
    try:
        state = ExitProgress(contract).load()
        acceptance = state.acceptance if state is not None else None
    except HandoverError as exc:
        acceptance_problem = str(exc)
    now = datetime.now(UTC)
    document = audit_report(
        playbook,
        checklists,
        checkpoints,
        acceptance,
        now,
        trail=trail,
        generated_by=actor(),
        signer=key.fingerprint(),
        acceptance_problem=acceptance_problem,
    )
    folder = out if out is not None else paths.root / "reports"
    stem = f"audit-report-{contract}-{now.strftime('%Y%m%dT%H%M%SZ')}"
    markdown = document.markdown.encode("utf-8")
    md, html = folder / f"{stem}.md", folder / f"{stem}.html"
    sig, signers = folder / f"{stem}.md.sig", folder / f"{stem}.allowed_signers"
    write_atomic(md, markdown)
    write_atomic(html, document.html.encode("utf-8"))
    write_atomic(sig, sign(markdown, key, REPORT_NAMESPACE).encode("ascii"))
    allowed = f"{SIGNER_IDENTITY} {key.public_line('provider')}"
    write_atomic(signers, (allowed + "\n").encode("utf-8"))
    for path in (md, html, sig, signers):
        console.print(f"written: {path}", soft_wrap=True, markup=False)
    console.print(
        f"signed by {key.fingerprint()}; allowed signer line:\n  {allowed}\n"
        f"check it with:\n  ssh-keygen -Y verify -f {signers} -I {SIGNER_IDENTITY} "
        f"-n {REPORT_NAMESPACE} -s {sig} < {md}",
        soft_wrap=True,
        markup=False,
    )
    if trail.intact:
        console.print(Text("audit trail intact", style="green"))
    else:
        console.print(
            Text(
                f"warning: audit trail NOT intact ({len(trail.problems)} problem(s)); "
                "the report lists them",
                style="yellow",
            ),
            soft_wrap=True,
        )
