"""One round of health samples: each check kind probed, then judged by a pure function.

The probes that need the host (systemd, disk, cert, postgres) run one short
command through the host's connector; the network probes (tcp, http) run
from the worker, as a client of the service would reach it. Each probe's
raw answer is judged by a pure `judge_*` function, so the verdicts are
tested without a network and the same answer always gives the same sample.

A probe that cannot run (no shell, a timeout, a refused connection) gives a
failed sample saying why: a check that did not answer is downtime, never a
pass.
"""

from __future__ import annotations

import re
import shlex
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict, Field

from handover.contract.health_checks import HealthCheckSpec

if TYPE_CHECKING:
    from handover.connectors.base import CommandResult
    from handover.secrets.references import Secret

__all__ = [
    "MAX_DETAIL",
    "CommandRunner",
    "HealthSample",
    "default_checks",
    "is_due",
    "judge_cert",
    "judge_disk",
    "judge_http",
    "judge_postgres",
    "judge_systemd",
    "take_sample",
]

MAX_DETAIL = 300  # characters of detail kept per sample: a line of the store stays small


class HealthSample(BaseModel):
    """One check's verdict at one moment, as stored in the sample store."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: datetime
    check: str
    service: str
    host: str | None
    kind: str
    ok: bool
    detail: str = Field(max_length=MAX_DETAIL)
    interval_s: int = Field(gt=0)
    latency_ms: float | None = None


class CommandRunner(Protocol):
    """What a probe needs of a host session (`Connector.run`)."""

    def run(
        self, command: str, *, stdin: bytes | None = None, timeout_s: float = 120
    ) -> CommandResult: ...


HttpGet = Callable[[str, float], int]  # url, timeout -> status (raises OSError when unreachable)
TcpConnect = Callable[[str, int, float], None]  # host, port, timeout (raises OSError)


def default_checks(host_names: Iterable[str]) -> list[HealthCheckSpec]:
    """A `reachable` check per host: what a playbook without `services.health_checks` measures."""
    return [
        HealthCheckSpec(name=f"{name}-reachable", kind="reachable", host=name, service=name)
        for name in host_names
    ]


#: A round may start a little early (the schedule's jitter): a check is due this much before.
DUE_SLACK_S = 60


def is_due(spec: HealthCheckSpec, last: datetime | None, now: datetime) -> bool:
    """Whether the check's interval has passed since its last sample (never taken: due).

    The health flow runs every 5 minutes; a check with a longer interval is
    sampled only on the rounds where it is due.
    """
    if last is None:
        return True
    return (now - last).total_seconds() >= spec.interval_minutes * 60 - DUE_SLACK_S


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


def _sample(
    spec: HealthCheckSpec, at: datetime, ok: bool, detail: str, latency_ms: float | None = None
) -> HealthSample:
    return HealthSample(
        at=at,
        check=spec.name,
        service=spec.service_name,
        host=spec.host,
        kind=spec.kind,
        ok=ok,
        detail=_clip(detail),
        interval_s=spec.interval_minutes * 60,
        latency_ms=latency_ms,
    )


# -- pure judges ---------------------------------------------------------------------------


def judge_http(
    status: int, latency_ms: float, expect: list[int], max_latency_ms: int | None
) -> tuple[bool, str]:
    """Status among `expect` (default 200-399) and, if set, within the latency limit."""
    status_ok = status in expect if expect else 200 <= status < 400
    slow = max_latency_ms is not None and latency_ms > max_latency_ms
    detail = f"HTTP {status} in {latency_ms:.0f} ms"
    if not status_ok:
        return False, f"{detail}: status not expected"
    if slow:
        return False, f"{detail}: slower than {max_latency_ms} ms"
    return True, detail


def judge_systemd(result: CommandResult, unit: str) -> tuple[bool, str]:
    """`systemctl is-active` prints the state and exits 0 only when active."""
    state = result.stdout.decode("utf-8", "replace").strip() or "no answer"
    if result.exit_status == 0 and state == "active":
        return True, f"{unit} active"
    return False, f"{unit} {state} (exit {result.exit_status})"


_DF_LINE = re.compile(r"^\S+\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)%\s+(.+)$")


def judge_disk(result: CommandResult, mount: str, threshold: int) -> tuple[bool, str]:
    """The used percentage `df -P` reports for the mount, against the threshold."""
    if result.exit_status != 0:
        err = result.stderr.decode("utf-8", "replace").strip()
        return False, f"df {mount} failed (exit {result.exit_status}): {err or 'no message'}"
    lines = result.stdout.decode("utf-8", "replace").strip().splitlines()
    match = _DF_LINE.match(lines[-1].strip()) if len(lines) >= 2 else None
    if match is None:
        return False, f"df {mount}: unreadable output"
    used = int(match[4])
    verdict = used < threshold
    return verdict, f"{mount} {used}% used, threshold {threshold}%"


def judge_cert(
    result: CommandResult, path: str, now: datetime, warning_days: int
) -> tuple[bool, str]:
    """`openssl x509 -enddate` of the certificate: not expired and not within the warning."""
    text = result.stdout.decode("utf-8", "replace").strip()
    if result.exit_status != 0 or not text.startswith("notAfter="):
        return False, f"{path}: certificate unreadable (exit {result.exit_status})"
    try:
        end = datetime.strptime(text.removeprefix("notAfter="), "%b %d %H:%M:%S %Y %Z")
    except ValueError:
        return False, f"{path}: unreadable expiry {text[:60]!r}"
    end = end.replace(tzinfo=UTC)
    days = (end - now).days
    if days < 0:
        return False, f"{path} expired on {end.date().isoformat()}"
    if days < warning_days:
        return False, f"{path} expires on {end.date().isoformat()}, in {days} days"
    return True, f"{path} valid until {end.date().isoformat()} ({days} days left)"


def judge_postgres(result: CommandResult) -> tuple[bool, str]:
    """psql answered `1` to `SELECT 1`; its error's first line otherwise (no secret in it)."""
    out = result.stdout.decode("utf-8", "replace").strip()
    if result.exit_status == 0 and out == "1":
        return True, "SELECT 1 answered"
    err = result.stderr.decode("utf-8", "replace").strip().splitlines()
    return False, f"psql exit {result.exit_status}: {err[0] if err else out or 'no answer'}"


# -- probes ------------------------------------------------------------------------------


def systemd_command(unit: str) -> str:
    return f"systemctl is-active -- {shlex.quote(unit)}"


def disk_command(mount: str) -> str:
    return f"LC_ALL=C df -P -- {shlex.quote(mount)}"


def cert_command(path: str) -> str:
    return f"openssl x509 -noout -enddate -in {shlex.quote(path)}"


def postgres_command(spec: HealthCheckSpec) -> str:
    """`psql -tAc 'SELECT 1'`, preceded by the lines reading `env` from stdin (like a dump)."""
    from handover.connectors.ssh.sources import env_script

    args = ["psql", "-X", "-w", "-tA"]
    if spec.database:
        args += ["-d", spec.database]
    if spec.db_user:
        args += ["-U", spec.db_user]
    args += ["-c", "SELECT 1"]
    return env_script(list(spec.env)) + " ".join(shlex.quote(a) for a in args)


def http_status(url: str, timeout_s: float) -> int:
    """GET the URL (no redirect followed), return the status; OSError when nothing answered."""

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def tcp_connect(address: str, port: int, timeout_s: float) -> None:
    with socket.create_connection((address, port), timeout=timeout_s):
        pass


def take_sample(
    spec: HealthCheckSpec,
    *,
    at: datetime,
    runner: CommandRunner | None,
    reach_error: str | None = None,
    address: str | None = None,
    disk_threshold: int = 90,
    cert_warning_days: int = 30,
    env: dict[str, Secret] | None = None,
    http_get: HttpGet = http_status,
    tcp: TcpConnect = tcp_connect,
) -> HealthSample:
    """Probe one check and judge it.

    `runner` is the host's open session (None when it could not be opened:
    `reach_error` says why, and every host probe fails with it); `address`
    is where a tcp check connects (the host's address). `env` holds the
    resolved secrets of a postgres check; they reach psql through stdin.
    """
    kind = spec.kind
    if kind == "http":
        assert spec.url is not None
        started = time.monotonic()
        try:
            status = http_get(spec.url, spec.timeout_s)
        except (OSError, ValueError) as exc:
            return _sample(spec, at, False, f"{spec.url}: no answer ({type(exc).__name__}: {exc})")
        latency = (time.monotonic() - started) * 1000
        ok, detail = judge_http(status, latency, spec.expect_status, spec.max_latency_ms)
        return _sample(spec, at, ok, detail, latency)
    if kind == "tcp":
        assert spec.port is not None
        target = address or "127.0.0.1"
        started = time.monotonic()
        try:
            tcp(target, spec.port, spec.timeout_s)
        except OSError as exc:
            return _sample(spec, at, False, f"{target}:{spec.port} refused or silent: {exc}")
        latency = (time.monotonic() - started) * 1000
        return _sample(spec, at, True, f"{target}:{spec.port} accepts connections", latency)
    if runner is None:
        return _sample(spec, at, False, f"host did not answer: {reach_error or 'no session'}")
    if kind == "reachable":
        return _sample(spec, at, True, "answered")
    try:
        if kind == "systemd":
            assert spec.unit is not None
            ok, detail = judge_systemd(
                runner.run(systemd_command(spec.unit), timeout_s=spec.timeout_s), spec.unit
            )
        elif kind == "disk":
            assert spec.mount is not None
            threshold = spec.threshold_percent or disk_threshold
            result = runner.run(disk_command(spec.mount), timeout_s=spec.timeout_s)
            ok, detail = judge_disk(result, spec.mount, threshold)
        elif kind == "cert":
            assert spec.path is not None
            warning = spec.warning_days if spec.warning_days is not None else cert_warning_days
            result = runner.run(cert_command(spec.path), timeout_s=spec.timeout_s)
            ok, detail = judge_cert(result, spec.path, at, warning)
        else:  # postgres
            from handover.connectors.ssh.sources import env_input

            stdin = env_input(env or {}, spec.host or "?") if spec.env else None
            result = runner.run(postgres_command(spec), stdin=stdin, timeout_s=spec.timeout_s)
            ok, detail = judge_postgres(result)
    except Exception as exc:  # a probe that broke is a failed sample that says why
        return _sample(spec, at, False, f"probe failed: {type(exc).__name__}: {exc}")
    return _sample(spec, at, ok, detail)
