"""Checklist item titles in the contract's language (#15): each template item has a title per
language, a contract's checklist is opened in its language, and a checklist stored before
(English title with a French gloss) is shown, and reworded when reopened, in that language.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from handover.checklist.store import ChecklistStore
from handover.cli import _register, app
from handover.contract.checklists import item_title, load_phase_template
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook, phase_items
from handover.documents.builder import DocumentBuilder
from handover.documents.checklists_report import checklists_report
from handover.documents.exit_sections import recorded_transfer_section
from handover.i18n import Texts
from handover.phases import PHASES, Phase
from tests.conftest import PROJECT_ROOT
from tests.unit.documents_fixtures import NOW, in_language, load_test_playbook

_register()
TEMPLATES = PROJECT_ROOT / "handover" / "contract" / "templates"
DEMO = PROJECT_ROOT / "playbooks" / "examples" / "demo.yaml"
# How the takeover's `inventory` item read before titles came per language.
OLD_INVENTORY = "Hardware and software inventory per host (inventaire matériel et logiciel)"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Playbook:
    return load_test_playbook(tmp_path_factory)


def test_every_template_item_has_a_french_and_an_english_title() -> None:
    for phase in PHASES:
        raw = yaml.safe_load((TEMPLATES / f"{phase}.yaml").read_text("utf-8"))["items"]
        french, english = load_phase_template(phase, "fr"), load_phase_template(phase, "en")
        assert [i["id"] for i in french] == [i["id"] for i in english] == [i["id"] for i in raw]
        for item, fr, en in zip(raw, french, english, strict=True):
            assert set(item["title"]) == {"fr", "en"}, item["id"]
            assert fr["title"] == item["title"]["fr"] and en["title"] == item["title"]["en"]
            assert fr["title"] != en["title"], item["id"]
            assert {k: v for k, v in fr.items() if k != "title"} == {
                k: v for k, v in en.items() if k != "title"
            }


def test_a_contracts_checklist_opens_in_its_language(base: Playbook) -> None:
    french = {i["id"]: i["title"] for i in phase_items(base, "takeover")}
    english = {i["id"]: i["title"] for i in phase_items(in_language(base, "en"), "takeover")}
    assert french["inventory"] == "Inventaire matériel et logiciel de chaque hôte"
    assert english["inventory"] == "Hardware and software inventory per host"
    assert french.keys() == english.keys()


def test_a_playbooks_own_title_stays_as_written() -> None:
    playbook = load_playbook(PROJECT_ROOT / "playbooks" / "examples" / "acme.yaml")
    items = {i["id"]: i for i in phase_items(playbook, "takeover")}
    reworded = items["documentation-collected"]["title"]
    assert reworded.startswith("Documentation collected from")  # the playbook's reword
    for language in ("fr", "en"):
        assert item_title("takeover", "documentation-collected", reworded, language) == reworded
        assert item_title("takeover", "m365-tenant-audit", "Audit M365", language) == "Audit M365"


def test_a_title_stored_before_languages_is_shown_in_the_contracts_language() -> None:
    assert item_title("takeover", "inventory", OLD_INVENTORY, "fr") == (
        "Inventaire matériel et logiciel de chaque hôte"
    )
    assert item_title("takeover", "inventory", OLD_INVENTORY, "en") == (
        "Hardware and software inventory per host"
    )
    old = "Credentials exported for the client (remise des accès, KDBX)"
    assert item_title("reversibility", "credentials-exported", old, "fr") == (
        "Remise des accès au client (KDBX)"
    )
    assert item_title("takeover", "inventory", "Inventory of the racks", "fr") == (
        "Inventory of the racks"
    )
    assert item_title("nowhere", "inventory", OLD_INVENTORY, "fr") == OLD_INVENTORY


def _old_checklist(base: Playbook, folder: Path) -> ChecklistStore:
    """A takeover checklist stored with the titles as they were (one English string each)."""
    store = ChecklistStore(folder)
    items = phase_items(in_language(base, "en"), "takeover")
    for item in items:
        if item["id"] == "inventory":
            item["title"] = OLD_INVENTORY
    store.open(base.contract.id, Phase.TAKEOVER, items)
    return store


def test_an_old_checklist_loads_reads_in_french_and_is_reworded_when_reopened(
    base: Playbook, tmp_path: Path
) -> None:
    store = _old_checklist(base, tmp_path)
    old = store.load(base.contract.id, Phase.TAKEOVER)
    assert {i.id: i.title for i in old.items}["inventory"] == OLD_INVENTORY
    report = checklists_report(base, [old], NOW).markdown
    assert "Inventaire matériel et logiciel de chaque hôte" in report
    assert OLD_INVENTORY not in report
    for item in load_phase_template("takeover", "en"):
        assert f"| {item['title']} |" not in report, item["id"]
    english = checklists_report(in_language(base, "en"), [old], NOW).markdown
    assert "| Hardware and software inventory per host |" in english

    reopened = store.open(base.contract.id, Phase.TAKEOVER, phase_items(base, "takeover"))
    titles = {i.id: i.title for i in reopened.items}
    assert titles == {i["id"]: i["title"] for i in load_phase_template("takeover", "fr")}
    assert "reworded" in store.audit_log(base.contract.id).path.read_text("utf-8")


def test_the_checklist_command_shows_the_titles_in_the_contracts_language(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / "home"))
    playbook = load_playbook(DEMO)
    assert playbook.contract.language == "fr"
    _old_checklist(playbook, tmp_path / "home")
    result = CliRunner().invoke(
        app, ["checklist", str(DEMO), "--phase", "takeover"], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    assert "Inventaire matériel et logiciel de chaque hôte" in result.output
    assert "Hardware and software inventory" not in result.output


def test_the_exit_reports_transfer_items_read_in_the_contracts_language(tmp_path: Path) -> None:
    store = ChecklistStore(tmp_path)
    english = load_phase_template("reversibility", "en")  # as a checklist opened before
    checklist = store.open("c1", Phase.REVERSIBILITY, english)
    b = DocumentBuilder(Texts.of("fr", "Europe/Paris"))
    recorded_transfer_section(b, checklist.items)
    text = b.document("x", "x").markdown
    french = {i["id"]: i["title"] for i in load_phase_template("reversibility", "fr")}
    assert f"| {french['knowledge-transfer-sessions']} |" in text, text
    assert "Knowledge transfer sessions held" not in text
