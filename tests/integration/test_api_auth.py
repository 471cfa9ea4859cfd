"""The Prefect API answers only with the auth string `handover server start` made.

Against the session's server (started by flows.server, as the command
does): a request without the string, or with a wrong one, gets 401 on
reading runs and on deleting one (the run is still there after); the health
probe stays open; the UI says it wants a login; the string and the database
are private files; and a handover command works with the string and fails
in one line, exit 2, without it.
"""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import PROJECT_ROOT
from tests.fixtures.prefect_server import AUTH_STRING, prefect_home

pytestmark = pytest.mark.integration


def basic(auth: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}


def created(api: httpx.Client, path: str, body: dict[str, str]) -> dict[str, str]:
    """POST, retried on 503 as Prefect's own client does (the shared server answers 503 when
    its database is busy under a loaded CI run; what this file tests is auth, not load)."""
    for attempt in range(6):
        response = api.post(path, json=body)
        if response.status_code != 503:
            break
        time.sleep(0.5 * (attempt + 1))
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture
def flow_run_id(prefect_server: str) -> str:
    """A real flow run, created with the auth string."""
    with httpx.Client(base_url=prefect_server, headers=basic(AUTH_STRING), timeout=30) as api:
        flow = created(api, "/flows/", {"name": "auth-probe"})
        run = created(api, "/flow_runs/", {"flow_id": flow["id"], "name": "auth-probe"})
        return str(run["id"])


@pytest.mark.parametrize("headers", [{}, basic("handover:wrong"), {"Authorization": "Bearer x"}])
def test_the_api_refuses_requests_without_the_auth_string(
    prefect_server: str, flow_run_id: str, headers: dict[str, str]
) -> None:
    with httpx.Client(base_url=prefect_server, headers=headers, timeout=30) as api:
        assert api.post("/flow_runs/filter", json={}).status_code == 401
        assert api.delete(f"/flow_runs/{flow_run_id}").status_code == 401
        assert api.get(f"/flow_runs/{flow_run_id}").status_code == 401
        # Health probes stay open: that is how commands tell "down" from "refused".
        assert api.get("/health").status_code == 200
    with httpx.Client(base_url=prefect_server, headers=basic(AUTH_STRING), timeout=30) as api:
        still_there = api.get(f"/flow_runs/{flow_run_id}")
        assert still_there.status_code == 200 and still_there.json()["name"] == "auth-probe"
        found = api.post("/flow_runs/filter", json={})
        assert found.status_code == 200
        assert flow_run_id in {run["id"] for run in found.json()}


def test_the_ui_asks_for_a_login_and_the_state_is_private(prefect_server: str) -> None:
    ui = prefect_server.removesuffix("/api")
    settings = httpx.get(f"{ui}/ui-settings", timeout=30)
    assert settings.status_code == 200 and settings.json()["auth"] == "BASIC", settings.text
    home = prefect_home()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for name in ("api-auth", "prefect.db"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600, name
    assert (home / "api-auth").read_text().strip() == AUTH_STRING
    assert AUTH_STRING.startswith("handover:") and len(AUTH_STRING) > 40


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_command_works_with_the_auth_string_and_fails_in_one_line_without(
    prefect_server: str, tmp_path: Path
) -> None:
    env = {**os.environ, "HANDOVER_HOME": str(tmp_path / "home")}
    assert env["PREFECT_API_AUTH_STRING"] == AUTH_STRING  # what every command of the session gets
    done = run_cli(env, "history", "auth-probe-contract")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "auth-probe-contract: 0 flow run(s)" in done.stdout, done.stdout

    env.pop("PREFECT_API_AUTH_STRING")
    refused = run_cli(env, "history", "auth-probe-contract")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    output = (refused.stdout + refused.stderr).strip()
    assert "Traceback" not in output
    assert "HTTP 401" in output and "PREFECT_API_AUTH_STRING" in output, output
    assert AUTH_STRING.split(":")[1] not in output
