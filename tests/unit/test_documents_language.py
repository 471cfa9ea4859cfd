"""Documents in the contract's language (#15): a French contract's documents hold no English
prose line, an English one no French line, moments are in the contract's zone with their
offset, and every message the code uses has its French translation in the catalogue.

"Prose" is what the code writes: the values the documents quote (the playbook's own
text, checklist titles, inventory facts, recorded values), code spans and file names are
data and are taken out of each line before it is read. A line of three words or more
then must not hold a word of the other language's short list of common words.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po
from pydantic import BaseModel

from handover.bundle.sshsig import SigningKey
from handover.checklist.checkpoints import CheckpointFile, make_checkpoint
from handover.checklist.model import Checklist, Evidence
from handover.checklist.store import ChecklistStore
from handover.checklist.templates import draft_checklist
from handover.checklist.trail import verify_trail
from handover.contract.deadlines import exit_deadlines
from handover.contract.playbook import Playbook, phase_items
from handover.documents.audit_report import audit_report
from handover.documents.baseline_report import baseline_report
from handover.documents.checklists_report import checklists_report
from handover.documents.document import Document
from handover.documents.exit_report import exit_report
from handover.documents.hotline_procedure import hotline_procedure
from handover.documents.reversibility_plan import reversibility_plan
from handover.documents.runbooks import runbooks
from handover.documents.sla_report import sla_report
from handover.estate.health import HealthCheckResult
from handover.exit.erasure import ErasureRecord, ErasureReport, KeptRecord
from handover.exit.erasure_certificate import erasure_certificate
from handover.exit.erasure_targets import kept_records
from handover.exit.progress import AcceptanceRecord
from handover.i18n import Texts, catalogue
from handover.operations.clauses import ClauseRecords, Intervention, Visit
from handover.operations.incidents import Incident
from handover.phases import PHASES, Phase
from handover.state.layout import ContractPaths
from tests.unit.documents_fixtures import (
    NOW,
    in_language,
    load_test_playbook,
    sample_inventory,
    sample_members,
)

ENGLISH = frozenset(
    [
        "the",
        "and",
        "of",
        "with",
        "is",
        "are",
        "was",
        "were",
        "for",
        "this",
        "that",
        "not",
        "to",
        "from",
        "by",
        "be",
        "been",
        "has",
        "have",
        "which",
        "when",
        "its",
        "it",
        "or",
        "into",
        "than",
        "any",
        "every",
        "each",
        "after",
        "before",
        "until",
        "yet",
        "only",
        "no",
    ]
)
FRENCH = frozenset(
    [
        "le",
        "la",
        "les",
        "des",
        "du",
        "et",
        "est",
        "sont",
        "une",
        "pour",
        "avec",
        "dans",
        "aucun",
        "aucune",
        "été",
        "qui",
        "sur",
        "pas",
        "au",
        "aux",
        "ou",
        "chaque",
        "avant",
        "après",
        "jusqu",
    ]
)
_CODE = re.compile(r"``.*?``|`[^`]*`")
_NOISE = re.compile(r"https?://\S+|\S+@\S+|\S*[/\\]\S*|\S+\.(?:md|txt|sig|pub|age|json|kdbx)\b")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def _strings(value: Any) -> Iterator[str]:
    """Every text a value holds: these are data the documents quote, not their prose."""
    if isinstance(value, BaseModel):
        yield from _strings(value.model_dump(mode="json"))
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        yield from _strings(dataclasses.asdict(value))
    elif isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def foreign_lines(markdown: str, stop_words: frozenset[str], data: Iterable[str]) -> list[str]:
    """The lines whose prose holds a word of `stop_words` (data and code taken out first)."""
    quoted = sorted({d for d in data if len(d) > 2}, key=len, reverse=True)
    found = []
    for line in markdown.splitlines():
        text = _CODE.sub(" ", line).replace("\\", "")
        for value in quoted:
            text = text.replace(value, " ")
        text = _NOISE.sub(" ", text)
        words = [w.lower() for w in _WORD.findall(text)]
        if len(words) >= 3 and any(w.split("'")[-1] in stop_words for w in words):
            found.append(line)
    return found


def test_the_heuristic_finds_a_line_of_the_other_language() -> None:
    """It can fail: an English sentence is found in French text, quoted data is not."""
    text = "# Rapport\n\n- Aucun hôte : the host was not read.\n- Hôte `the file is here`\n"
    assert foreign_lines(text, ENGLISH, []) == ["- Aucun hôte : the host was not read."]
    assert foreign_lines(text, ENGLISH, ["the host was not read."]) == []
    assert foreign_lines("- Le lot n'a pas été livré.", FRENCH, []) != []


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Playbook:
    return load_test_playbook(tmp_path_factory)


def _checklists(playbook: Playbook, folder: Path) -> list[Checklist]:
    store = ChecklistStore(folder)
    contract = playbook.contract.id
    store.open(contract, Phase.REVERSIBILITY, phase_items(playbook, "reversibility"))
    store.start(contract, Phase.REVERSIBILITY, "bundle-sealed", "flow")
    store.complete(
        contract,
        Phase.REVERSIBILITY,
        "bundle-sealed",
        "flow",
        [Evidence(kind="bundle", path="/b/SHA256SUMS", sha256="d" * 64)],
    )
    store.start(contract, Phase.REVERSIBILITY, "access-revoked", "flow")
    store.fail(contract, Phase.REVERSIBILITY, "access-revoked", "flow", "web01: denied")
    takeover = draft_checklist(contract, Phase.TAKEOVER, phase_items(playbook, "takeover"))
    return [takeover, store.load(contract, Phase.REVERSIBILITY)]


def _erasure_report(complete: bool) -> ErasureReport:
    """A recorded erasure: one target erased, one failed unless `complete`, two things kept."""
    records = [
        ErasureRecord(
            kind="bundle",
            location="/srv/bundle",
            description="restitution bundle",
            method="unlink",
            status="erased",
            objects=3,
            bytes=300,
            at=NOW,
            by="ops",
            verified_at=NOW,
        ),
    ]
    if not complete:
        records.append(
            ErasureRecord(
                kind="s3",
                location="s3://copies/demo/",
                description="",
                method="S3 DeleteObjects",
                status="failed",
                objects=0,
                bytes=0,
                at=NOW,
                by="ops",
                error="RuntimeError: AccessDenied",
                remaining=2,
            )
        )
    kept = [
        KeptRecord(
            kind="exempted",
            what="factures",
            where="",
            reason="comptabilité",
            basis="Code de commerce L123-22",
        ),
        KeptRecord(
            kind="evidence",
            what="journal d'audit",
            where="/srv/audit.log",
            reason="preuve de l'exécution",
        ),
    ]
    return ErasureReport(
        contract_id="demo-estate",
        started_at=NOW,
        finished_at=NOW,
        by="ops",
        records=records,
        kept=kept,
    )


def certificates(playbook: Playbook) -> tuple[list[str], list[Any]]:
    """The erasure certificate, complete and incomplete, and the records it quotes."""
    reports = [_erasure_report(True), _erasure_report(False)]
    return [erasure_certificate(r, playbook) for r in reports], reports


def sla_documents(playbook: Playbook) -> tuple[list[Document], list[Any]]:
    """The SLA report with findings, incidents (one late), on-site and visit journals."""
    start = datetime(2026, 4, 1, tzinfo=UTC)
    checks = [
        HealthCheckResult(
            host="web01",
            check="reachable",
            ok=h % 5 != 0,
            detail="ping",
            at=start + timedelta(hours=h),
        )
        for h in range(48)
    ] + [HealthCheckResult(host="web01", check="disk", ok=False, detail="/var 95%", at=start)]
    incidents = [
        Incident(
            id="T-1",
            severity="P1",
            summary="site arrêté",
            opened_at=start,
            resolved_at=start + timedelta(days=2),
        ),
        Incident(id="T-2", severity="P2", summary="lenteurs", opened_at=start + timedelta(1)),
    ]
    interventions = [
        Intervention(
            id="OS-1",
            reason="disque",
            host="db01",
            requested_at=datetime(2026, 4, 13, 9, tzinfo=UTC),
            arrived_at=datetime(2026, 4, 14, 12, tzinfo=UTC),
        ),
    ]
    visits = [Visit(id="V-1", on=date(2026, 4, 2), technician="Paul", work="mises à jour")]
    clauses = ClauseRecords(interventions, "onsite.jsonl", visits, "visits.jsonl")
    docs = [
        sla_report(
            playbook,
            date(2026, 4, 1),
            date(2026, 6, 30),
            checks,
            incidents,
            NOW,
            "incidents.jsonl",
            clauses,
        ),
        sla_report(playbook, date(2026, 4, 1), date(2026, 4, 30), []),
        hotline_procedure(playbook),
    ]
    return docs, [checks, incidents, interventions, visits]


def audit_reports(
    playbook: Playbook, folder: Path, checklists: list[Checklist]
) -> tuple[list[Document], list[Any]]:
    """The audit report with a signed checkpoint and an answer, and without either."""
    store = ChecklistStore(folder)
    contract = playbook.contract.id
    key = SigningKey.generate()
    checkpoint = make_checkpoint(
        store.audit_log(contract),
        key,
        "reversibility end",
        checkpoints=CheckpointFile(store.checkpoints_path(contract)),
    )
    answer = AcceptanceRecord(
        accepted=False,
        accepted_by="Léa Durand",
        comment="",
        at=NOW.isoformat(),
        decision="accepted-with-reservations",
        reservations="deux volumes manquants",
        signer_fingerprint="SHA256:client",
    )
    trail = verify_trail(store, contract, None, "")  # self-asserted: the key the log names
    assert trail.intact, trail.problems
    signed = audit_report(
        playbook, checklists, [checkpoint], answer, NOW, trail=trail, signer=key.fingerprint()
    )
    bare = audit_report(
        playbook, [], [], None, NOW, trail=trail, generated_by="x", acceptance_problem="{bad"
    )
    return [signed, bare], [checkpoint.model_dump(), answer]


def documents(playbook: Playbook, folder: Path) -> tuple[list[Document], list[Any]]:
    """Every document of the contract, and the data they were given (quoted, not prose)."""
    inventory = sample_inventory()
    checklists = _checklists(playbook, folder)
    dates = exit_deadlines(playbook.reversibility.deadlines, date(2026, 12, 31))
    summary = {"location": "/deliveries/demo-estate/bundle", "total_bytes": 123456789}
    deliveries = [{"kind": "local", "location": "/deliveries/demo-estate", "at": NOW}]
    acceptance = {"accepted": True, "accepted_by": "Léa Durand", "at": NOW.isoformat()}
    revocations = [{"host": "web01", "account": "ops", "ok": False}]
    erasure = {
        "complete": False,
        "remaining": ["/srv/backups/demo"],
        "records": [
            {
                "kind": "bundle",
                "location": "/srv/bundle",
                "method": "unlink",
                "status": "erased",
                "objects": 3,
                "at": NOW.isoformat(),
            },
            {
                "kind": "backups",
                "location": "/srv/backups/demo",
                "method": "unlink",
                "status": "failed",
                "objects": 0,
                "at": NOW.isoformat(),
            },
        ],
        "kept": [
            {"kind": "evidence", "what": "audit log", "where": "/srv/audit", "reason": "proof"}
        ],
        "certificate_sha256": "a" * 64,
    }
    docs = [
        baseline_report(playbook, [inventory], {"www": sample_members()}, NOW),
        reversibility_plan(playbook, NOW, notice_date=date(2026, 12, 31)),
        reversibility_plan(playbook, NOW),
        runbooks(playbook, [inventory]),
        runbooks(playbook),
        exit_report(
            playbook,
            summary,
            deliveries,
            acceptance,
            revocations,
            erasure,
            checklists,
            NOW,
            deadlines=dates,
            replaced=(),
        ),
        exit_report(playbook, {}, [], None, [], None, checklists, NOW, deadlines=dates),
    ]
    data = [playbook, inventory, checklists, summary, deliveries, acceptance, revocations, erasure]
    sla, quoted = sla_documents(playbook)
    audit, recorded = audit_reports(playbook, folder, checklists)
    docs += [*sla, *audit, checklists_report(playbook, checklists, NOW)]
    return docs, data + quoted + recorded


def test_a_french_contracts_documents_hold_no_english_prose(base: Playbook, tmp_path: Path) -> None:
    docs, data = documents(base, tmp_path)  # the test playbook leaves the default: fr
    assert base.contract.language == "fr"
    quoted = list(_strings(data))
    for doc in docs:
        assert foreign_lines(doc.markdown, ENGLISH, quoted) == [], doc.name
        assert '<html lang="fr">' in doc.html and "Généré par handover." in doc.html
    texts, records = certificates(base)
    for text in texts:
        assert foreign_lines(text, ENGLISH, list(_strings([base, records]))) == []


def test_an_english_contracts_documents_hold_no_french_prose(
    base: Playbook, tmp_path: Path
) -> None:
    docs, data = documents(in_language(base, "en", "Europe/Paris"), tmp_path)
    quoted = list(_strings(data))
    for doc in docs:
        assert foreign_lines(doc.markdown, FRENCH, quoted) == [], doc.name
        assert '<html lang="en">' in doc.html
    english = in_language(base, "en", "Europe/Paris")
    texts, records = certificates(english)
    for text in texts:
        assert foreign_lines(text, FRENCH, list(_strings([english, records]))) == []
    assert "- Result: incomplete" in texts[1]


def test_french_documents_read_in_french_with_paris_time_and_its_offset(
    base: Playbook, tmp_path: Path
) -> None:
    docs, _ = documents(base, tmp_path)
    baseline, plan, _example, _runbooks, _generic, exit_doc, pending, sla, *_ = docs
    # NOW is 10:00 UTC on 3 February: 11:00 in Paris, one hour ahead in winter
    assert "- **Généré le :** 3 février 2026 à 11:00 (UTC+01:00)" in baseline.markdown
    assert baseline.title == "État des lieux : Infogérance de démonstration (Demo Estate SARL)"
    assert "## Calendrier de sortie" in plan.markdown
    assert "| prestataire | document | Art. 12.2" in plan.markdown  # owner, evidence kind
    assert "| Notification de sortie reçue | — | 31 décembre 2026 |" in plan.markdown
    assert exit_doc.title.startswith("Rapport de fin de contrat : ")
    assert "**incomplet**" in exit_doc.markdown
    assert "- **Accepté par :** Léa Durand" in exit_doc.markdown
    assert "- **Date :** 3 février 2026 à 11:00 (UTC+01:00)" in exit_doc.markdown
    assert "- Réversibilité : `access-revoked` est en échec: web01: denied" in exit_doc.markdown
    assert sla.title.startswith("Rapport de niveau de service du 1 avril 2026 au 30 juin 2026")
    assert "| `OS-1` | `db01` | 13 avril 2026 à 11:00 (UTC+02:00) |" in sla.markdown
    assert "- **Objectif de disponibilité :** 99,5\u00a0%" in sla.markdown  # decimal comma
    assert "> **Attention :** Le lot n" in pending.markdown or "Aucun lot consigné." in (
        pending.markdown
    )


def test_the_erasure_certificate_reads_in_french_to_the_second_in_paris_time(
    base: Playbook,
) -> None:
    complete, incomplete = certificates(base)[0]
    assert "- Effacement commencé : 3 février 2026 à 11:00:00 (UTC+01:00)" in complete
    assert "- Résultat : complet" in complete and "## Restant" not in complete
    assert "| 1 | restitution bundle | /srv/bundle | unlink | effacé | 3 | 300 |" in complete
    assert "- Résultat : incomplet" in incomplete
    assert "Restant : 1 emplacement détient encore des données à effacer" in incomplete
    assert (
        "- s3://copies/demo/ (s3): en échec, 2 entrées restantes: RuntimeError: AccessDenied"
        in incomplete
    )
    assert "INCOMPLET :" in incomplete


def test_a_summer_moment_shows_the_summer_offset() -> None:
    paris = Texts.of("fr", "Europe/Paris")
    summer = datetime(2026, 7, 14, 12, 30, tzinfo=UTC)
    assert paris.datetime(summer) == "14 juillet 2026 à 14:30 (UTC+02:00)"
    assert Texts.of("en", "Europe/Paris").datetime(summer) == "2026-07-14 14:30 (UTC+02:00)"
    assert Texts.of("en", "America/New_York").datetime(summer) == "2026-07-14 08:30 (UTC-04:00)"
    assert paris.date(datetime(2026, 12, 31, 23, 30, tzinfo=UTC)) == "1 janvier 2027"


def test_every_message_has_its_french_translation() -> None:
    """The packaged catalogue is complete: no id the code uses lacks its French text,
    and each translation keeps the id's placeholders."""
    with catalogue.po_path("fr").open("rb") as handle:
        po = read_po(handle, locale="fr")
    placeholder = re.compile(r"\{[a-z_]+(?::[^}]*)?\}")
    missing: list[object] = []
    mismatched: list[object] = []
    for message in catalogue.extracted():
        if not message.id:
            continue
        entry = po.get(message.id)
        raw = None if entry is None else entry.string
        strings = [str(x) for x in raw] if isinstance(raw, (tuple, list)) else [str(raw or "")]
        if entry is None or entry.fuzzy or not all(strings):
            missing.append(message.id)
            continue
        ids = [str(x) for x in message.id] if isinstance(message.id, tuple) else [str(message.id)]
        allowed = set(placeholder.findall(ids[-1])) | set(placeholder.findall(ids[0]))
        for text in strings:
            found = set(placeholder.findall(text))
            # a translation uses the id's placeholders, all of them for a plain message
            if found - allowed or (len(ids) == 1 and found != allowed):
                mismatched.append(message.id)
    assert missing == [] and mismatched == []


def test_a_provider_catalogue_rewords_a_message(
    base: Playbook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "home" / "locale" / "fr" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "handover.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
        'msgid "Baseline report: {title}"\nmsgstr "Inventaire initial : {title}"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / "home"))
    doc = baseline_report(base, [], {}, NOW)
    assert doc.title.startswith("Inventaire initial : ")
    assert "## Synthèse" in doc.markdown  # what the provider's file lacks: the packaged text


def test_what_the_erasure_keeps_reads_in_the_certificates_language(
    base: Playbook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider's records the erasure keeps (`kept_records`, worded in English where
    they are made) read in French in a French certificate, and unchanged in English."""
    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    paths = ContractPaths(base.contract_id)
    for phase in PHASES:
        paths.documents_dir(phase).mkdir(parents=True, exist_ok=True)
    paths.checklists_dir.mkdir(parents=True, exist_ok=True)
    for path in (paths.audit_log, paths.incidents_file, paths.known_hosts, paths.root / "x"):
        path.write_text("", encoding="utf-8")
    kept = kept_records(base)
    assert len(kept) >= 12  # exemption, checklists, logs, every phase's folders, Prefect, other
    report = _erasure_report(True).model_copy(update={"kept": kept})
    where = [k.where for k in kept if k.where.startswith("/")]
    french = erasure_certificate(report, base)
    assert foreign_lines(french, ENGLISH, [*_strings(base), *where]) == []
    assert "| les rapports de la phase de reprise |" in french
    english = erasure_certificate(report, in_language(base, "en"))
    for record in kept:
        assert f"| {record.what} |" in english  # English: as recorded
