"""Errors of libraries the core does not know, translated at the command boundary."""

from __future__ import annotations

import httpx
import pytest
import typer
from typer.testing import CliRunner

import handover.cli as cli
from flows.server import PrefectApiUnreachable, api_error
from handover.errors import UsageError


def test_a_registered_translator_turns_a_foreign_error_into_a_clean_exit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cli, "_TRANSLATORS", [])
    app = typer.Typer()

    @app.command()
    @cli.handles_errors
    def boom(kind: str) -> None:
        raise KeyError(kind) if kind == "key" else ValueError(kind)

    cli.translate_errors(lambda e: UsageError(f"no {e}") if isinstance(e, KeyError) else None)
    runner = CliRunner()
    mapped = runner.invoke(app, ["key"])
    assert mapped.exit_code == 2 and "error: no 'key'" in mapped.output
    unknown = runner.invoke(app, ["value"])  # a bug stays a bug: the exception goes through
    assert isinstance(unknown.exception, ValueError)


def test_prefect_clients_connection_error_becomes_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4299/api")
    request = httpx.Request("GET", "http://127.0.0.1:4299/api/admin/version")
    try:
        try:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        except httpx.ConnectError as exc:
            raise RuntimeError("Failed to reach API at http://127.0.0.1:4299/api/") from exc
    except RuntimeError as wrapped:
        error = api_error(wrapped)
    assert isinstance(error, PrefectApiUnreachable) and error.exit_code == 1
    assert str(error) == (
        "the Prefect API at http://127.0.0.1:4299/api does not answer (connection refused); "
        "start it with 'handover server start --port 4299' or fix PREFECT_API_URL"
    )
    lost = httpx.RemoteProtocolError("Server disconnected", request=request)
    assert "connection lost during a request" in str(api_error(lost))
    assert api_error(RuntimeError("something else")) is None
