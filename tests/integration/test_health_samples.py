"""The health flow against a real sshd and a local HTTP server: samples stored, then measured."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.health import health
from tasks.health import period_health, sample_store
from tests.conftest import PROJECT_ROOT
from tests.fixtures.sshd import SshdHost

pytestmark = pytest.mark.integration

CONTRACT = "health-samples"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/ok" else 503
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def web() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _playbook(tmp_path: Path, host: SshdHost, web: str) -> Path:
    from handover.demo.keys import make_demo_keys

    make_demo_keys(tmp_path / ".handover" / "demo" / "keys")
    data = yaml.safe_load((PROJECT_ROOT / "playbooks" / "examples" / "demo.yaml").read_text())
    data["contract"]["id"] = CONTRACT
    data["perimeter"]["hosts"] = [host.host_dict()]
    data["perimeter"]["datasets"] = []
    data["security"]["provider_access"] = []
    name = host.name
    data.setdefault("services", {})["health_checks"] = [
        {"name": "ssh-up", "kind": "reachable", "host": name, "service": "server"},
        {"name": "ssh-port", "kind": "tcp", "host": name, "port": host.port, "service": "server"},
        {"name": "root-disk", "kind": "disk", "host": name, "mount": "/", "threshold_percent": 100},
        {"name": "web-ok", "kind": "http", "url": f"{web}/ok", "service": "web"},
        {"name": "web-down", "kind": "http", "url": f"{web}/down", "service": "shop"},
        {"name": "nginx", "kind": "systemd", "host": name, "unit": "nginx.service"},
        {
            "name": "db",
            "kind": "postgres",
            "host": name,
            "database": "handover-no-such-db",
            "env": {"PGPASSWORD": "env:HEALTH_TEST_PGPASSWORD"},
            "interval_minutes": 15,
        },
    ]
    path = tmp_path / "health.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def test_health_flow_stores_real_samples_and_rounds_respect_intervals(
    tmp_path: Path,
    sshd_shell: SshdHost,
    web: str,
    prefect_server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HEALTH_TEST_PGPASSWORD", "pg-secret-4b7e")
    playbook = _playbook(tmp_path, sshd_shell, web)
    started = datetime.now(UTC)

    first = health(str(playbook))
    assert first.samples == 7 and first.hosts_unsampled == []
    store = sample_store(CONTRACT)
    read = store.read(started - timedelta(seconds=1), datetime.now(UTC) + timedelta(seconds=1))
    by_check = {s.check: s for s in read.samples}
    assert by_check["ssh-up"].ok and by_check["ssh-port"].ok
    assert by_check["root-disk"].ok and "% used" in by_check["root-disk"].detail
    assert by_check["web-ok"].ok and "HTTP 200" in by_check["web-ok"].detail
    assert not by_check["web-down"].ok and "HTTP 503" in by_check["web-down"].detail
    # No nginx unit, no such database: the checks fail (they never pass by default).
    assert not by_check["nginx"].ok and "nginx.service" in by_check["nginx"].detail
    assert not by_check["db"].ok and by_check["db"].detail.startswith("psql exit")
    assert by_check["db"].interval_s == 900

    second = health(str(playbook))  # right after: nothing is due yet
    assert second.samples == 0
    month = store.path(started.strftime("%Y-%m"))
    stored = month.read_bytes()
    assert stored.count(b"\n") == 7
    assert b"pg-secret-4b7e" not in stored  # the password went to psql through stdin only

    # One round is not a measured month: the operational run's reading says "not measured".
    period = period_health.fn(str(playbook), started - timedelta(days=30), datetime.now(UTC))
    assert period.samples == 7 and period.unreadable_lines == 0
    assert {s.service: s.percent for s in period.services} == {
        "server": None,
        "root-disk": None,
        "web": None,
        "shop": None,
        "nginx": None,
        "db": None,
    }
    server = next(s for s in period.services if s.service == "server")
    assert server.samples == 2 and server.checks == ("ssh-up", "ssh-port")
    assert {s.check for s in period.latest} == set(by_check)
