"""An alert reaches a person: a certificate expiring in 9 days, judged from a real certificate,
is emitted as `handover.cert-expiring`, and the contract's automation on the real Prefect
server sends it through a custom-webhook block to a local HTTP sink."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.automations import Automation
from prefect.blocks.notifications import CustomWebhookNotificationBlock

from flows.notifications import (
    NotificationBlockMissing,
    automation_name,
    ensure_notification_automation,
)
from handover.connectors.local import LocalConnector
from handover.contract.health_checks import HealthCheckSpec
from handover.contract.operations import Notifications
from handover.contract.playbook import Playbook
from handover.estate.health_checks import take_sample
from handover.operations.alerts import Alert
from tasks.health import alert_on_samples
from tests.conftest import require_binary
from tests.unit.documents_fixtures import load_test_playbook

pytestmark = pytest.mark.integration


@pytest.fixture
def sink() -> Iterator[tuple[str, list[dict[str, object]]]]:
    """A local HTTP server that keeps the JSON body of every POST it receives."""
    received: list[dict[str, object]] = []

    class Sink(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            received.append(json.loads(self.rfile.read(length) or b"{}"))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def _playbook(base: Playbook, contract: str, block: str) -> Playbook:
    operations = base.operations.model_copy(
        update={"notifications": Notifications(block=block, kinds=["cert-expiring"])}
    )
    return base.model_copy(
        update={
            "contract": base.contract.model_copy(update={"id": contract}),
            "operations": operations,
        }
    )


def _certificate(folder: Path, days: int) -> Path:
    openssl = require_binary("openssl", "openssl")
    cert = folder / "site.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(folder / "site.key"), "-out", str(cert),
         "-days", str(days), "-subj", "/CN=shop.example"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert


def _wait_for(received: list[dict[str, object]], timeout_s: float) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not received:
        time.sleep(1)
    return received


def test_an_expiring_certificate_is_sent_through_the_contracts_block(
    prefect_server: str,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    sink: tuple[str, list[dict[str, object]]],
) -> None:
    url, received = sink
    suffix = uuid.uuid4().hex[:8]  # the server is shared: our block, automation and events only
    contract, block_name = f"notify-{suffix}", f"ops-hook-{suffix}"
    playbook = _playbook(
        load_test_playbook(tmp_path_factory), contract, f"custom-webhook/{block_name}"
    )

    with pytest.raises(NotificationBlockMissing, match=block_name):
        ensure_notification_automation(playbook)  # named in the playbook, not yet registered

    CustomWebhookNotificationBlock(
        name="ops sink",
        url=url,
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
        headers=None,
        cookies=None,
    ).save(block_name, overwrite=True)
    assert ensure_notification_automation(playbook) == "created"
    assert ensure_notification_automation(playbook) == "exists"  # never made twice
    automation: Any = Automation.read(name=automation_name(contract))  # sync outside a flow
    assert automation.trigger.expect == {"handover.cert-expiring"}
    time.sleep(3)  # the triggers service loads new automations on its own cycle

    cert = _certificate(tmp_path, days=9)
    spec = HealthCheckSpec(name="shop-cert", kind="cert", host="web01", path=str(cert))
    sample = take_sample(
        spec, at=datetime.now(UTC), runner=LocalConnector("web01"), cert_warning_days=30
    )
    assert not sample.ok and " expires on " in sample.detail, sample.detail

    sent: list[Alert] = []

    @flow(name="notify-test")
    def round_of_health() -> None:
        sent.extend(alert_on_samples(playbook, [sample]))

    round_of_health()
    assert [a.kind for a in sent] == ["cert-expiring"]
    round_of_health()  # the same fact again within the repeat interval: not told twice
    assert len(sent) == 1

    got = _wait_for(received, timeout_s=120)
    assert got, "no notification reached the sink within 120 s"
    subject, body = str(got[0]["subject"]), str(got[0]["body"])
    assert contract in subject and "handover.cert-expiring" in subject, subject
    assert f"contract: {contract}" in body and str(cert) in body and "expires on" in body, body
    assert "kind: handover.cert-expiring" in body
