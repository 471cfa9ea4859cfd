"""What an auditor sees in the Prefect UI, checked in headless Chromium.

The takeover flow runs for the demo contract against the session's Prefect
server; then the UI (served by that server, its API URL set with
PREFECT_UI_API_URL) is opened in Chromium and checked as rendered: the run
is listed as Completed, the keyed checklist artifact lists several
versions, the newest version shows the checklist table (item ids, titles,
"done"), and the flow run page lists its task runs. Each page is saved as
a screenshot under the test's tmp folder. The server requires its auth
string: the auditor first meets the login form (and no runs), and logs in.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterName,
)
from prefect.client.schemas.sorting import FlowRunSort
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from flows.lifecycle import run_phase
from handover.checklist.model import Status
from handover.checklist.store import ChecklistStore
from handover.contract.checklists import load_phase_template
from handover.exit.progress import ExitProgress
from tests.browser import chromium, log_in
from tests.fixtures.prefect_server import AUTH_STRING
from tests.workspace import Workspace, make_workspace

pytestmark = pytest.mark.integration

# The SPA loads a few MB of JS and then queries the API: slow on a loaded machine.
UI_TIMEOUT = 120
API_ERROR = "Can't connect to Server API"

T = TypeVar("T")

# Read in one script call each: per-element WebDriver calls are slow on a busy page.
TABLE_CELLS = """
const text = (el) => el.textContent.trim();
return [
    Array.from(document.querySelectorAll('table thead th')).map(text),
    Array.from(document.querySelectorAll('table tbody tr'))
        .map((tr) => Array.from(tr.querySelectorAll('td')).map(text)),
];
"""
TASK_RUN_NAMES = """
return Array.from(document.querySelectorAll('.p-tabs__content a[href*="/runs/task-run/"]'))
    .map((a) => a.textContent.trim());
"""


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_server: str) -> Workspace:
    return make_workspace(tmp_path, monkeypatch)


def body_text(driver: WebDriver) -> str:
    try:
        return driver.find_element(By.TAG_NAME, "body").text
    except StaleElementReferenceException:
        return ""


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], T], what: str, shot: Path) -> T:
    """Wait until condition returns something truthy; on timeout fail with a screenshot."""

    def check(d: WebDriver) -> T:
        text = body_text(d)
        if API_ERROR in text:
            raise AssertionError(f"UI cannot reach its API while waiting for {what}: {text[:500]}")
        try:
            return condition(d)
        except StaleElementReferenceException:  # the SPA re-rendered under us
            return None  # type: ignore[return-value]

    try:
        return WebDriverWait(driver, UI_TIMEOUT, poll_frequency=0.5).until(check)
    except TimeoutException:
        driver.save_screenshot(str(shot))
        pytest.fail(
            f"{what} not shown after {UI_TIMEOUT}s at {driver.current_url} "
            f"(screenshot {shot}); page text: {body_text(driver)[:1500]}"
        )


def settle_and_save(driver: WebDriver, shot: Path) -> str:
    """Screenshot the page and return its text, checking no API error toast is shown."""
    driver.save_screenshot(str(shot))
    text = body_text(driver)
    assert API_ERROR not in text, text[:500]
    assert "Prefect Server" in driver.title, driver.title
    return text


def test_auditor_sees_run_checklist_versions_and_task_runs(
    workspace: Workspace, tmp_path: Path
) -> None:
    assert run_phase("takeover", workspace.playbook), "takeover did not complete"
    key = f"{workspace.contract}-takeover-checklist"
    checklist = ChecklistStore().load(workspace.contract, "takeover")
    expected = {item.id: item.title for item in checklist.items}
    assert expected and all(i.status == Status.DONE for i in checklist.items)
    # The workspace's contract is French (the default): its checklist, so the artifact, reads so.
    french = {i["id"]: i["title"] for i in load_phase_template("takeover", "fr")}
    assert {k: v for k, v in expected.items() if k in french} == french, expected

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                name=FlowRunFilterName(like_=f"takeover-{workspace.contract}-")
            ),
            sort=FlowRunSort.START_TIME_DESC,
        )
        versions = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    assert runs and runs[0].state is not None and runs[0].state.is_completed()
    run = runs[0]
    assert run.name.startswith(f"takeover-{workspace.contract}-")
    assert len(versions) >= 3, len(versions)

    ui = os.environ["PREFECT_UI_URL"].rstrip("/")
    shots = tmp_path / "screenshots"
    shots.mkdir()

    with chromium() as driver:
        # (0) Without the auth string the UI shows its login form, not the runs.
        before = log_in(driver, f"{ui}/runs", AUTH_STRING)
        assert "Login" in before and run.name not in before, before[:500]

        # (1) The runs list shows the takeover run as Completed.
        driver.get(f"{ui}/runs")

        def run_row_state(d: WebDriver) -> str | None:
            for row in d.find_elements(By.CSS_SELECTOR, ".flow-run-list-item"):
                links = row.find_elements(By.CSS_SELECTOR, f'a[href$="/runs/flow-run/{run.id}"]')
                if links and links[0].text.strip() == run.name:
                    badge = row.find_element(By.CSS_SELECTOR, ".state-badge").text.strip()
                    return badge or None
            return None

        state = wait_for(driver, run_row_state, f"run {run.name} in the runs list", shots / "1.png")
        assert state == "Completed", state
        text = settle_and_save(driver, shots / "1-runs.png")
        assert run.name in text and "Completed" in text

        # (2a) The keyed artifact page lists several versions, newest from this run.
        driver.get(f"{ui}/artifacts/key/{key}")

        def timeline(d: WebDriver) -> list | None:
            items = d.find_elements(By.CSS_SELECTOR, ".artifact-timeline__content")
            items = [i for i in items if i.find_elements(By.CSS_SELECTOR, "a[href]")]
            # The UI loads the timeline 10 versions at a time.
            return items if len(items) >= min(len(versions), 10) else None

        items = wait_for(driver, timeline, f"versions of artifact {key}", shots / "2.png")
        assert 3 <= len(items) <= len(versions), (len(items), len(versions))
        newest = items[0]
        assert run.name in newest.text, newest.text
        text = settle_and_save(driver, shots / "2-artifact-key.png")
        assert key in text
        assert f"{len(expected)} done, {len(expected)} total" in text, text[:800]

        # (2b) The newest version, opened from the timeline, shows the checklist table.
        link = newest.find_element(By.CSS_SELECTOR, 'a[href*="/artifacts/artifact/"]')
        artifact_id = link.get_attribute("title")
        link.click()

        def table(d: WebDriver) -> tuple[list[str], list[list[str]]] | None:
            if artifact_id not in d.current_url:
                return None
            headers, rows = d.execute_script(TABLE_CELLS)
            # Cells are markdown, rendered after the rows: wait until id, title, status show.
            filled = [r for r in rows if len(r) >= 3 and all(r[:3])]
            return (headers, rows) if headers and len(filled) >= len(expected) else None

        headers, rows = wait_for(driver, table, "the checklist table", shots / "3.png")
        settle_and_save(driver, shots / "3-artifact-table.png")
        assert headers[:3] == ["id", "title", "status"], headers
        shown = {row[0]: (row[1], row[2]) for row in rows}
        assert set(shown) == set(expected), shown
        for item_id, title in expected.items():
            assert shown[item_id] == (title, "done"), (item_id, shown[item_id])
        assert "baseline-report" in shown

        # (3) The flow run page lists the run's task runs.
        driver.get(f"{ui}/runs/flow-run/{run.id}")
        tab = wait_for(
            driver,
            lambda d: next(iter(d.find_elements(By.CSS_SELECTOR, "li.p-tab#task-runs")), None),
            "the Task Runs tab",
            shots / "4.png",
        )
        tab.click()

        def task_runs(d: WebDriver) -> set[str] | None:
            names = set(d.execute_script(TASK_RUN_NAMES))
            return names if {f"{i}: done" for i in expected} <= names else None

        names = wait_for(driver, task_runs, "the task runs of the flow run", shots / "4.png")
        text = settle_and_save(driver, shots / "4-flow-run-task-runs.png")
        assert run.name in text and "Completed" in text
        assert {f"{i}: done" for i in expected} <= names, names
        # The run carries the contract's tags, which the run list filters on.
        assert f"contract:{workspace.contract}" in text, text[:1500]
        assert "phase:takeover" in text, text[:1500]


def test_auditor_sees_the_signed_acceptance_and_who_signed(
    workspace: Workspace, tmp_path: Path
) -> None:
    """After an exit, the acceptance artifact shows the decision and the signer's key."""
    for phase in ("takeover", "implementation", "operational", "reversibility"):
        assert run_phase(phase, workspace.playbook, auto_accept=True), f"{phase} did not complete"
    record = ExitProgress(workspace.contract).load()
    assert record is not None and record.acceptance is not None
    fingerprint = record.acceptance.signer_fingerprint
    assert fingerprint.startswith("SHA256:")
    key = f"{workspace.contract}-acceptance"

    ui = os.environ["PREFECT_UI_URL"].rstrip("/")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with chromium() as driver:
        before = log_in(driver, f"{ui}/artifacts/key/{key}", AUTH_STRING)
        assert "Login" in before and "Client acceptance" not in before, before[:500]
        driver.get(f"{ui}/artifacts/key/{key}")
        link = wait_for(
            driver,
            lambda d: next(
                iter(d.find_elements(By.CSS_SELECTOR, 'a[href*="/artifacts/artifact/"]')), None
            ),
            f"the newest version of artifact {key}",
            shots / "a-key.png",
        )
        assert "Client acceptance: accepted" in body_text(driver)
        link.click()

        def shown(d: WebDriver) -> str | None:
            text = body_text(d)
            return text if fingerprint in text else None

        text = wait_for(driver, shown, f"the signer's key on artifact {key}", shots / "a.png")
        settle_and_save(driver, shots / "acceptance.png")
        assert "Client acceptance" in text and "accepted" in text, text[:1500]
        assert record.acceptance.accepted_by in text, text[:1500]
