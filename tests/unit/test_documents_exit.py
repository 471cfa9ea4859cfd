"""Exit report: every step recorded or listed as an open point, secrets and signatures left out."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from handover.checklist.model import Checklist, Evidence
from handover.checklist.store import ChecklistStore
from handover.checklist.templates import draft_checklist
from handover.contract.deadlines import exit_deadlines
from handover.contract.playbook import Playbook, phase_items
from handover.contract.reversibility import Deadlines
from handover.documents.exit_report import exit_report
from handover.exit.erasure import ErasureRecord, KeptRecord
from handover.exit.erasure_certificate import SignedErasure
from handover.phases import Phase
from tests.unit.documents_fixtures import HOSTILE, NOW, check_html, in_language, load_test_playbook


@pytest.fixture(scope="module")
def playbook(tmp_path_factory: pytest.TempPathFactory) -> Playbook:
    """In English (the French rendering is tested in test_documents_language)."""
    return in_language(load_test_playbook(tmp_path_factory), "en")


def test_exit_report_lists_everything_and_the_open_points(
    playbook: Playbook, tmp_path: Path
) -> None:
    store = ChecklistStore(tmp_path)
    contract = playbook.contract.id
    store.open(contract, Phase.REVERSIBILITY, phase_items(playbook, "reversibility"))
    for item in ("exit-notice", "bundle-sealed"):
        store.start(contract, Phase.REVERSIBILITY, item, "flow")
        store.complete(
            contract,
            Phase.REVERSIBILITY,
            item,
            "flow",
            [Evidence(kind="bundle", path="/b/SHA256SUMS", sha256="d" * 64)],
        )
    store.start(contract, Phase.REVERSIBILITY, "access-revoked", "flow")
    store.fail(contract, Phase.REVERSIBILITY, "access-revoked", "flow", "web01: permission denied")
    store.start(contract, Phase.REVERSIBILITY, "exit-report", "flow")
    checklist = store.load(contract, Phase.REVERSIBILITY)
    takeover = draft_checklist(contract, Phase.TAKEOVER, phase_items(playbook, "takeover"))
    doc = exit_report(
        playbook,
        bundle_summary={
            "location": "/deliveries/demo-estate/bundle",
            "sha256sums_sha256": "e" * 64,
            "total_bytes": 123456789,
            "volumes": [{"file": "volumes/0001-web01-www.tar.age", "sha256": "c" * 64}],
        },
        deliveries=[{"kind": "local", "path": "/deliveries/demo-estate", "at": NOW}],
        acceptance={"accepted": True, "by": "Léa Durand", "comment": f"OK {HOSTILE}"},
        revocations=[{"host": "web01", "account": "ops", "ok": False, "password": "Canary42"}],
        erasure=None,
        checklists=[takeover, checklist],
        generated_at=NOW,
    )
    md = doc.markdown
    assert "- **Location:** `/deliveries/demo-estate/bundle`" in md
    assert "117.7 MiB (123456789 bytes)" in md
    assert "| `volumes/0001-web01-www.tar.age` | `" + "c" * 64 + "` |" in md
    assert "- **Accepted:** yes" in md and "- **By:** Léa Durand" in md
    assert "Canary42" not in md and "Canary42" not in doc.html
    assert "| web01 | ops | no | \\*\\*\\* |" in md
    assert "| `bundle-sealed` |" in md and "SHA256SUMS (dddddddddddd)" in md
    pending = len(checklist.items) - 4
    assert (
        f"**incomplete** 2 done, 0 waived, 1 failed, 1 running, {pending} pending (version 8)."
        in (md)
    )
    open_points = md.split("## Open points")[1]
    assert "Access revocation failed: web01" in open_points
    assert "Erasure of provider copies pending." in open_points
    assert "Reversibility: `access-revoked` is failed: web01: permission denied" in open_points
    assert "`exit-report`" not in open_points  # the report being written is not an open point
    assert "Takeover: `credentials-received`" not in open_points  # waived in the demo playbook
    assert "> **Warning:** **incomplete**" in md.split("## Restitution bundle")[0]
    assert "<script>" not in doc.html
    check_html(doc)


def test_exit_report_complete_when_everything_is_recorded(
    playbook: Playbook, tmp_path: Path
) -> None:
    store = ChecklistStore(tmp_path)
    contract = playbook.contract.id
    items = [{"id": "bundle-sealed", "title": "Sealed"}, {"id": "exit-report", "title": "Report"}]
    store.open(contract, Phase.REVERSIBILITY, items)
    store.start(contract, Phase.REVERSIBILITY, "bundle-sealed", "flow")
    store.complete(contract, Phase.REVERSIBILITY, "bundle-sealed", "flow", [])
    store.start(contract, Phase.REVERSIBILITY, "exit-report", "flow")
    doc = exit_report(
        playbook,
        {"location": "/b"},
        [{"kind": "local", "path": "/d"}],
        {"accepted": True},
        [{"host": h, "ok": True} for h in ("web01", "db01", "files01")],
        {"certificate": "/d/erasure.txt", "erased_at": NOW},
        [store.load(contract, Phase.REVERSIBILITY)],
        NOW,
    )
    assert "None: the exit is complete." in doc.markdown
    assert "**complete** Every exit step is done and recorded." in doc.markdown


def test_exit_report_hides_presigned_signatures_and_shows_certificates_as_text(
    playbook: Playbook,
) -> None:
    link = (
        "https://s3.example/bucket/b/SHA256SUMS?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIDEXAMPLE&X-Amz-Signature=deadbeefcafe"
    )
    certificate = "ERASURE CERTIFICATE\nContract: demo-estate\nErased: 3 volumes\n"
    deadlines = exit_deadlines(playbook.reversibility.deadlines, date(2026, 3, 1))
    doc = exit_report(
        playbook,
        {"location": "s3://bucket/b", "deadlines": deadlines},
        [{"kind": "s3", "links": [link]}],
        None,
        [],
        {"certificate": certificate, "erased_at": NOW},
        [],
        NOW,
    )
    assert "deadbeefcafe" not in doc.markdown and "deadbeefcafe" not in doc.html
    assert "AKIDEXAMPLE" not in doc.markdown
    assert "https://s3.example/bucket/b/SHA256SUMS (presigned link; signature left out)" in (
        doc.markdown
    )
    assert "```\nERASURE CERTIFICATE\nContract: demo-estate\nErased: 3 volumes\n```" in doc.markdown
    assert "<pre><code>ERASURE CERTIFICATE\nContract: demo-estate" in doc.html
    # the calendar given inside the bundle summary is shown as the calendar, not as a field
    assert "| End of retrieval period: erasure from | 30 days | 2026-06-30 |" in doc.markdown
    assert "retrieval_ends" not in doc.markdown
    assert "Client acceptance not received." in doc.markdown
    check_html(doc)


def _reversibility_checklist(playbook: Playbook, tmp_path: Path) -> Checklist:
    """The exit's checklist with the first knowledge-transfer item done, the others pending."""
    store = ChecklistStore(tmp_path)
    contract = playbook.contract.id
    store.open(contract, Phase.REVERSIBILITY, phase_items(playbook, "reversibility"))
    first = next(
        i
        for i in store.load(contract, Phase.REVERSIBILITY).items
        if i.id.startswith("knowledge-transfer")
    )
    store.start(contract, Phase.REVERSIBILITY, first.id, "flow")
    store.complete(
        contract,
        Phase.REVERSIBILITY,
        first.id,
        "flow",
        [Evidence(kind="document", path="/c/knowledge-transfer-plan.json", sha256="a" * 64)],
    )
    return store.load(contract, Phase.REVERSIBILITY)


def test_exit_report_shows_the_recorded_calendar_and_the_knowledge_transfer(
    playbook: Playbook, tmp_path: Path
) -> None:
    checklist = _reversibility_checklist(playbook, tmp_path)
    transfer = [i for i in checklist.items if i.id.startswith("knowledge-transfer")]
    assert transfer, "the reversibility template holds knowledge-transfer items"
    extended = Deadlines.model_validate(
        {
            "transition_days": 90,
            "transition_extension": {
                "basis": "data-act-art-25-4",
                "justification": "40 TB over a 1 Gbit/s link",
            },
        }
    )
    dates = exit_deadlines(extended, date(2026, 3, 1))
    other = exit_deadlines(playbook.reversibility.deadlines, date(2026, 1, 1))
    doc = exit_report(
        playbook,
        {"location": "/b", "deadlines": other.model_dump(mode="json")},
        [{"kind": "local", "path": "/d"}],
        {"accepted": True, "accepted_by": "Léa Durand", "early_erasure": False},
        [],
        None,
        [checklist],
        NOW,
        deadlines=dates,
    )
    md = doc.markdown
    calendar = md.split("## Exit calendar")[1].split("\n## ")[0]
    assert "| Exit notice received | — | 2026-03-01 |" in calendar  # the explicit calendar wins
    assert "2026-01-01" not in md  # and the one in the summary is not repeated as a field
    assert (
        "| Switch-over: end of transition, final export and delivery | 90 days | 2026-07-30 |"
        in (calendar)
    )
    assert "| End of retrieval period: erasure from | 30 days | 2026-08-29 |" in calendar
    assert "Data Act art. 25(4): alternative transitional period of 90 days" in calendar
    assert "40 TB over a 1 Gbit/s link" in calendar
    assert "- **Erasure window:** from 2026-08-29 to 2026-09-28; earlier only if" in calendar
    section = md.split("## Knowledge transfer")[1].split("\n## ")[0]
    assert f"1 of {len(transfer)} item" in section
    assert f"| `{transfer[0].id}` | {transfer[0].title} | **done** |" in section
    assert "knowledge-transfer-plan.json (aaaaaaaaaaaa)" in section
    for item in transfer[1:]:
        assert f"| `{item.id}` | {item.title} | **pending** |" in section
    assert "`exit-notice`" not in section
    # not overdue on NOW: erasure is only pending
    assert "Erasure of provider copies pending." in md.split("## Open points")[1]
    check_html(doc)


def test_exit_report_flags_early_erasure_and_an_overdue_erasure(playbook: Playbook) -> None:
    dates = exit_deadlines(playbook.reversibility.deadlines, date(2025, 6, 1))
    assert NOW.date() > dates.erasure_by
    doc = exit_report(
        playbook,
        {"location": "/b"},
        [{"kind": "local", "path": "/d"}],
        {"accepted": True, "early_erasure": True},
        [],
        None,
        [],
        NOW,
        deadlines=dates,
    )
    md = doc.markdown
    assert (
        "- **Erasure window:** **early erasure requested** by the client's signed acceptance: "
        f"from acceptance to {dates.erasure_by.isoformat()}" in md
    )
    open_points = md.split("## Open points")[1]
    assert f"Erasure of provider copies overdue: due by {dates.erasure_by.isoformat()}." in (
        open_points
    )
    assert "Erasure of provider copies pending." not in open_points
    # without a checklist, the knowledge transfer is the one the playbook plans
    section = md.split("## Knowledge transfer")[1].split("\n## ")[0]
    assert f"before the switch-over on {dates.switch_over.isoformat()}" in section
    assert "| `knowledge-transfer-" in section


def test_exit_report_without_a_calendar_says_so(playbook: Playbook) -> None:
    doc = exit_report(
        playbook,
        {"location": "/b", "deadlines": {"switch_over": "soon"}},
        [],
        None,
        [],
        None,
        [],
        NOW,
    )
    md = doc.markdown
    assert "No exit calendar recorded: the exit notice was not recorded." in md
    assert "- **Deadlines:** switch_over: soon" in md  # an unreadable calendar stays visible
    assert "before the switch-over, the provider hands" in md


def _section(md: str, heading: str) -> str:
    """The Markdown of one `## ` section, up to the next one."""
    return md.split(f"## {heading}")[1].split("\n## ")[0]


def _signed_erasure(complete: bool) -> dict[str, object]:
    """A `SignedErasure` as the flow dumps it (JSON, no signature): two targets, two kept."""
    erasure = SignedErasure(
        certificate="# Erasure certificate — contract demo-estate\n\n- Result: see below\n",
        signature="-----BEGIN SSH SIGNATURE-----\nCanarySig\n-----END SSH SIGNATURE-----",
        certificate_sha256="f" * 64,
        provider_key="ssh-ed25519 AAAAC3Nza provider",
        records=[
            ErasureRecord(
                kind="bundle",
                location="/srv/handover/demo-estate/bundle",
                description="restitution bundle",
                method="unlink",
                status="erased",
                objects=12,
                bytes=4096,
                at=NOW,
                by="ops@provider",
                verified_at=NOW,
            ),
            ErasureRecord(
                kind="backups",
                location="s3://backups/demo-estate/",
                description="backup archives",
                method="S3 object deletion",
                status="erased" if complete else "refused",
                objects=3 if complete else 0,
                bytes=0,
                at=NOW,
                by="ops@provider",
                error="" if complete else "AccessDenied: legal hold",
                remaining=0 if complete else 7,
            ),
        ],
        complete=complete,
        remaining=[] if complete else ["s3://backups/demo-estate/"],
        kept=[
            KeptRecord(
                kind="legal-retention",
                what="invoices",
                where="",
                reason="kept by the provider for its own accounts",
                basis="Code de commerce L123-22, 10 ans",
            ),
            KeptRecord(
                kind="evidence",
                what="audit log and checklists",
                where="/srv/handover/demo-estate/reversibility",
                reason="evidence of how the contract was performed",
            ),
        ],
    )
    return erasure.model_dump(mode="json", exclude={"signature"})


def _erasure_report(
    playbook: Playbook, erasure: dict[str, object] | None, **summary: object
) -> str:
    dates = exit_deadlines(playbook.reversibility.deadlines, date(2025, 6, 1))
    doc = exit_report(
        playbook,
        {"location": "/b", **summary},
        [{"kind": "local", "path": "/d"}],
        {"accepted": True, "accepted_by": "Léa Durand", "early_erasure": False},
        [],
        erasure,
        [],
        NOW,
        deadlines=dates,
    )
    check_html(doc)
    assert "CanarySig" not in doc.markdown
    return doc.markdown


def test_an_incomplete_erasure_is_a_warning_and_an_open_point(playbook: Playbook) -> None:
    md = _erasure_report(playbook, _signed_erasure(complete=False))
    section = _section(md, "Erasure of provider copies")
    assert (
        "> **Warning:** **incomplete** The erasure is incomplete: data meant to be erased "
        "remains, or may remain, in 1 location: s3://backups/demo-estate/." in section
    )
    assert "Erasure incomplete: s3://backups/demo-estate/" in _section(md, "Open points")
    assert "**incomplete**" in md.split("## Exit calendar")[0]  # and the verdict says so
    # each target is a row: what, where, method, status, objects, when
    assert "| What | Where | Method | Status | Objects | When |" in section
    assert (
        "| restitution bundle | `/srv/handover/demo-estate/bundle` | unlink | **erased** | 12 "
        "| 2026-02-03 10:00 UTC |" in section
    )
    assert (
        "| backup archives | `s3://backups/demo-estate/` | S3 object deletion | **refused** | 0 "
        "| 2026-02-03 10:00 UTC |" in section
    )
    assert "- **Records:**" not in section  # a table, not an inline dump
    assert "- **Certificate sha256:** `" + "f" * 64 + "`" in section


def test_the_kept_records_are_a_table_with_their_legal_basis(playbook: Playbook) -> None:
    md = _erasure_report(playbook, _signed_erasure(complete=True))
    section = _section(md, "Erasure of provider copies")
    kept = section.split("### Kept (not erased), and why")[1].split("\n### ")[0]
    assert "| What | Where | Reason | Legal basis |" in kept
    assert (
        "| invoices | not stated | kept by the provider for its own accounts "
        "| Code de commerce L123-22, 10 ans |" in kept
    )
    assert (
        "| audit log and checklists | `/srv/handover/demo-estate/reversibility` "
        "| evidence of how the contract was performed | — |" in kept
    )
    assert "- **Kept:**" not in section
    assert "**complete** Every target was erased or found absent, and checked." in section
    assert "Erasure incomplete" not in md
    assert "Warning" not in section


def test_an_erasure_not_yet_done_says_when_it_is_due(playbook: Playbook) -> None:
    dates = exit_deadlines(playbook.reversibility.deadlines, date(2026, 1, 10))
    doc = exit_report(
        playbook,
        {"location": "/b", "waits": {}},
        [],
        {"accepted": True, "accepted_by": "Léa Durand", "early_erasure": False},
        [],
        None,
        [],
        NOW,
        deadlines=dates,
    )
    section = _section(doc.markdown, "Erasure of provider copies")
    assert (
        "Provider copies have not been erased yet; the signed erasure certificate is pending. "
        f"The erasure is due from {dates.erasure_earliest.isoformat()}, the end of the retrieval "
        f"period, and by {dates.erasure_by.isoformat()} at the latest." in section
    )


def test_the_calendar_says_how_each_wait_ended(playbook: Playbook) -> None:
    dates = exit_deadlines(playbook.reversibility.deadlines, date(2025, 6, 1))
    waits = {
        "switch-over": "final export at the switch-over (end of the transition period): "
        "continued early on 2025-08-20: the incoming provider's migration window",
        "erasure": "early erasure asked by Léa Durand on 2025-08-25T09:00:00+00:00",
    }
    md = _erasure_report(playbook, _signed_erasure(complete=True), waits=waits)
    calendar = _section(md, "Exit calendar")
    assert (
        "- **Final export:** **brought forward** on 2025-08-20, before the switch-over of "
        f"{dates.switch_over.isoformat()}; reason recorded: the incoming provider's "
        "migration window" in calendar
    )
    assert "not before" not in calendar  # the rule is not claimed as kept
    assert (
        "- **Erasure:** **brought forward** at the client's request, before the end of the "
        f"retrieval period ({dates.erasure_earliest.isoformat()}): early erasure asked by "
        "Léa Durand on 2025-08-25T09:00:00+00:00" in calendar
    )
    assert "Waits" not in _section(md, "Restitution bundle")  # not repeated as a field


def test_waits_reached_on_their_dates_and_a_wait_still_to_come(playbook: Playbook) -> None:
    dates = exit_deadlines(playbook.reversibility.deadlines, date(2025, 6, 1))
    reached = (
        "final export at the switch-over (end of the transition period): "
        f"{dates.switch_over.isoformat()} reached"
    )
    md = _erasure_report(playbook, None, waits={"switch-over": reached})
    calendar = _section(md, "Exit calendar")
    assert (
        f"- **Final export:** **waited** for the switch-over: {dates.switch_over.isoformat()} "
        "reached" in calendar
    )
    assert (
        "- **Erasure:** **still to come**: the erasure waits for the end of the retrieval "
        f"period, {dates.erasure_earliest.isoformat()}" in calendar
    )


def test_a_wait_recorded_before_its_date_or_missing_after_its_step_is_not_called_kept(
    playbook: Playbook,
) -> None:
    dates = exit_deadlines(playbook.reversibility.deadlines, date(2025, 6, 1))
    # a record saying the date was reached before the calendar's date: not on time
    early = (
        "erasure of the provider's copies after the retrieval period: "
        f"{dates.switch_over.isoformat()} reached"
    )
    md = _erasure_report(playbook, _signed_erasure(complete=True), waits={"erasure": early})
    calendar = _section(md, "Exit calendar")
    assert (
        f"- **Erasure:** **before its date** recorded as reached on "
        f"{dates.switch_over.isoformat()}, before the end of the retrieval period on "
        f"{dates.erasure_earliest.isoformat()}" in calendar
    )
    # delivered without a switch-over record (an exit recorded before waits were kept)
    assert (
        "- **Final export:** **not recorded**: the delivery is recorded, but not how its "
        "wait ended" in calendar
    )
    assert "still to come" not in calendar


def test_exit_report_shows_each_delivery_replaced_after_reservations(
    playbook: Playbook,
) -> None:
    replaced = {
        "revision": 1,
        "bundle_name": "acme-1",
        "delivery": {"kind": "local", "location": "/out/acme-1"},
        "acceptance": {"accepted_by": "Client DSI", "signer_fingerprint": "SHA256:abc",
                       "reservations": "the mail archive is missing"},
        "correction": {"corrected_by": "Ops lead", "corrections": "mail dataset added"},
    }  # fmt: skip
    doc = exit_report(
        playbook, {"location": "/b"}, [{"kind": "local", "location": "/out/acme-1-r2"}],
        {"accepted": True}, [], None, [], NOW, replaced=[replaced],
    )  # fmt: skip
    section = doc.markdown.split("## Deliveries replaced after reservations", 1)[1]
    section = section.split("\n## ", 1)[0]
    for text in ("acme-1", "SHA256:abc", "the mail archive is missing", "Ops lead",
                 "mail dataset added"):  # fmt: skip
        assert text in section
    plain = exit_report(playbook, {"location": "/b"}, [], None, [], None, [], NOW)
    assert "replaced after reservations" not in plain.markdown
