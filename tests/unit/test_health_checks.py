"""Each check kind against fakes: the probe's command, the judge's verdict, failures said."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from typing import Any

import pytest

from handover.connectors.base import CommandResult
from handover.contract.health_checks import HealthCheckSpec
from handover.estate.health_checks import (
    MAX_DETAIL,
    default_checks,
    judge_http,
    postgres_command,
    take_sample,
)
from handover.secrets.references import Secret

NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


class FakeHost:
    """A host session answering each command with a canned result, recording what it ran."""

    def __init__(self, result: CommandResult | Exception) -> None:
        self.result = result
        self.commands: list[tuple[str, bytes | None]] = []

    def run(
        self, command: str, *, stdin: bytes | None = None, timeout_s: float = 120
    ) -> CommandResult:
        self.commands.append((command, stdin))
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def answer(stdout: str = "", status: int = 0, stderr: str = "") -> CommandResult:
    return CommandResult(exit_status=status, stdout=stdout.encode(), stderr=stderr.encode())


def spec(**kw: Any) -> HealthCheckSpec:
    return HealthCheckSpec.model_validate({"name": "c1", "host": "web01", **kw})


def test_reachable_passes_with_a_session_and_fails_without() -> None:
    check = spec(kind="reachable")
    assert take_sample(check, at=NOW, runner=FakeHost(answer())).ok
    down = take_sample(check, at=NOW, runner=None, reach_error="connection refused")
    assert not down.ok and "connection refused" in down.detail
    assert down.interval_s == 300 and down.service == "c1" and down.at == NOW


def test_host_probes_fail_when_the_host_did_not_answer() -> None:
    for kind, extra in (("systemd", {"unit": "nginx"}), ("disk", {"mount": "/"}), ("postgres", {})):
        sample = take_sample(spec(kind=kind, **extra), at=NOW, runner=None, reach_error="timeout")
        assert not sample.ok and "timeout" in sample.detail


def test_systemd_active_inactive() -> None:
    host = FakeHost(answer("active\n"))
    assert take_sample(spec(kind="systemd", unit="nginx.service"), at=NOW, runner=host).ok
    assert host.commands[0][0] == "systemctl is-active -- nginx.service"
    failed = take_sample(
        spec(kind="systemd", unit="nginx.service"), at=NOW, runner=FakeHost(answer("failed\n", 3))
    )
    assert not failed.ok and failed.detail == "nginx.service failed (exit 3)"


def test_systemd_unit_is_quoted() -> None:
    host = FakeHost(answer("active\n"))
    take_sample(spec(kind="systemd", unit="x; rm -rf /"), at=NOW, runner=host)
    assert host.commands[0][0] == "systemctl is-active -- 'x; rm -rf /'"


DF = (
    "Filesystem 1024-blocks Used Available Capacity Mounted on\n"
    "/dev/sda1 1000 {u}0 {a}0 {u}% /var\n"
)


def test_disk_threshold_from_spec_or_sla() -> None:
    full = FakeHost(answer(DF.format(u=95, a=5)))
    sample = take_sample(spec(kind="disk", mount="/var"), at=NOW, runner=full, disk_threshold=90)
    assert not sample.ok and sample.detail == "/var 95% used, threshold 90%"
    ok = take_sample(spec(kind="disk", mount="/var", threshold_percent=98), at=NOW, runner=full)
    assert ok.ok
    assert full.commands[0][0] == "LC_ALL=C df -P -- /var"


def test_disk_unreadable_or_failed_df() -> None:
    assert not take_sample(
        spec(kind="disk", mount="/x"), at=NOW, runner=FakeHost(answer("junk"))
    ).ok
    gone = take_sample(
        spec(kind="disk", mount="/x"),
        at=NOW,
        runner=FakeHost(answer("", 1, "df: /x: No such file")),
    )
    assert not gone.ok and "No such file" in gone.detail


@pytest.mark.parametrize(
    ("end", "ok", "words"),
    [
        ("Mar  1 12:00:00 2027 GMT", True, "days left"),
        ("Dec 20 12:00:00 2026 GMT", False, "in 16 days"),
        ("Nov 20 12:00:00 2026 GMT", False, "expired on 2026-11-20"),
    ],
)
def test_cert_expiry(end: str, ok: bool, words: str) -> None:
    host = FakeHost(answer(f"notAfter={end}\n"))
    sample = take_sample(spec(kind="cert", path="/etc/ssl/a.pem"), at=NOW, runner=host)
    assert sample.ok is ok and words in sample.detail
    assert host.commands[0][0] == "openssl x509 -noout -enddate -in /etc/ssl/a.pem"


def test_cert_unreadable() -> None:
    sample = take_sample(
        spec(kind="cert", path="/nope"), at=NOW, runner=FakeHost(answer("", 1, "Could not open"))
    )
    assert not sample.ok and "unreadable" in sample.detail


def test_postgres_select_1_with_env_through_stdin() -> None:
    check = spec(kind="postgres", database="erp", db_user="app", env={"PGPASSWORD": "env:PG"})
    host = FakeHost(answer("1\n"))
    sample = take_sample(check, at=NOW, runner=host, env={"PGPASSWORD": Secret(b"s3cr3t")})
    assert sample.ok and sample.detail == "SELECT 1 answered"
    command, stdin = host.commands[0]
    assert "s3cr3t" not in command and stdin == b"s3cr3t\n"
    assert command.endswith("psql -X -w -tA -d erp -U app -c 'SELECT 1'")
    assert "IFS= read -r PGPASSWORD" in command


def test_postgres_refused_says_psql_first_error_line() -> None:
    host = FakeHost(answer("", 2, "psql: error: connection refused\nmore"))
    sample = take_sample(spec(kind="postgres"), at=NOW, runner=host)
    assert not sample.ok and sample.detail == "psql exit 2: psql: error: connection refused"
    assert host.commands[0][1] is None


def test_postgres_script_reads_env_in_a_real_shell() -> None:
    """The env lines work in sh: the variable reaches the command, not its text."""
    check = spec(kind="postgres", env={"PGPASSWORD": "env:PG"})
    script = postgres_command(check).replace(
        "psql -X -w -tA -c 'SELECT 1'", "printf '[%s]' \"$PGPASSWORD\""
    )
    out = subprocess.run(["sh", "-c", script], input=b"a b\\c\n", capture_output=True, check=True)
    assert out.stdout == b"[a b\\c]"


def test_probe_that_raises_is_a_failed_sample() -> None:
    sample = take_sample(
        spec(kind="systemd", unit="x"),
        at=NOW,
        runner=FakeHost(TimeoutError("timed out after 10 s")),
    )
    assert not sample.ok and "TimeoutError" in sample.detail


def test_http_status_latency_and_unreachable() -> None:
    check = HealthCheckSpec(name="web", kind="http", url="https://shop.example/health")
    assert take_sample(check, at=NOW, runner=None, http_get=lambda url, t: 200).ok
    bad = take_sample(check, at=NOW, runner=None, http_get=lambda url, t: 503)
    assert not bad.ok and "HTTP 503" in bad.detail and bad.latency_ms is not None

    def refused(url: str, timeout: float) -> int:
        raise ConnectionRefusedError("refused")

    down = take_sample(check, at=NOW, runner=None, http_get=refused)
    assert not down.ok and "no answer" in down.detail
    assert judge_http(200, 900, [], 500) == (False, "HTTP 200 in 900 ms: slower than 500 ms")
    assert judge_http(404, 10, [404], None)[0]
    assert not judge_http(302, 10, [200], None)[0]


def test_tcp_connects_to_the_host_address() -> None:
    seen: list[tuple[str, int, float]] = []
    check = spec(kind="tcp", port=5432, timeout_s=3)
    ok = take_sample(check, at=NOW, runner=None, address="10.0.0.5", tcp=lambda *a: seen.append(a))
    assert ok.ok and seen == [("10.0.0.5", 5432, 3.0)]

    def refused(host: str, port: int, timeout: float) -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    assert not take_sample(check, at=NOW, runner=None, address="10.0.0.5", tcp=refused).ok


def test_detail_is_clipped() -> None:
    host = FakeHost(answer("x" * 5000, 3))
    sample = take_sample(spec(kind="systemd", unit="u"), at=NOW, runner=host)
    assert len(sample.detail) == MAX_DETAIL


def test_spec_requires_the_fields_of_its_kind() -> None:
    with pytest.raises(ValueError, match="port: required for a tcp check"):
        HealthCheckSpec.model_validate({"name": "t", "kind": "tcp", "host": "h"})
    with pytest.raises(ValueError, match="host: required"):
        HealthCheckSpec.model_validate({"name": "d", "kind": "disk", "mount": "/"})
    with pytest.raises(ValueError, match="only a postgres check"):
        HealthCheckSpec.model_validate(
            {"name": "d", "kind": "disk", "host": "h", "mount": "/", "env": {"X": "env:X"}}
        )
    with pytest.raises(ValueError, match="http:// or https://"):
        HealthCheckSpec.model_validate({"name": "w", "kind": "http", "url": "ftp://x"})
    assert [c.name for c in default_checks(["a", "b"])] == ["a-reachable", "b-reachable"]


def test_check_names_are_unique_and_postgres_env_is_a_credential_reference() -> None:
    from handover.contract.services import Services

    with pytest.raises(ValueError, match="duplicate check name 'web'"):
        Services.model_validate(
            {
                "health_checks": [
                    {"name": "web", "kind": "http", "url": "http://a"},
                    {"name": "web", "kind": "http", "url": "http://b"},
                ]
            }
        )
    with pytest.raises(ValueError):
        spec(kind="postgres", env={"PGPASSWORD": "s3cr3t-literal"})
    with pytest.raises(ValueError, match="not an allowed variable name"):
        spec(kind="postgres", env={"LD_PRELOAD": "env:X"})


def test_a_check_is_due_once_its_interval_has_passed() -> None:
    from datetime import timedelta

    from handover.estate.health_checks import is_due

    every_15 = spec(kind="reachable", interval_minutes=15)
    assert is_due(every_15, None, NOW)
    assert not is_due(every_15, NOW - timedelta(minutes=5), NOW)
    assert not is_due(every_15, NOW - timedelta(minutes=13), NOW)
    assert is_due(every_15, NOW - timedelta(minutes=14, seconds=30), NOW)  # the schedule's jitter
    assert is_due(spec(kind="reachable"), NOW - timedelta(minutes=5), NOW)
