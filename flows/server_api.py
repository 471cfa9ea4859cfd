"""Whether the Prefect API answers, and how to say so in one line when it does not.

Split from `flows.server` (which starts and stops the embedded server): these
checks serve any API, the embedded one or a team's own `PREFECT_API_URL`.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from handover.errors import HandoverError, UsageError

DEFAULT_PORT = 4200
API_CHECK_TIMEOUT_S = 3.0  # a healthy local or LAN server answers /health in milliseconds
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class PrefectApiUnreachable(HandoverError):
    """The Prefect API does not answer: nothing listens there, or it died during the run.

    Exit code 1, not 2: the command itself was right; a service it needs is
    down, as with an unreachable host. The message says how to bring it back.
    """

    def __init__(self, api_url: str, reason: str, hint: str) -> None:
        self.api_url = api_url
        self.reason = reason
        super().__init__(f"the Prefect API at {api_url} does not answer ({reason}); {hint}")


@dataclass(frozen=True)
class ServerInfo:
    """Where a running server answers, and which process it is."""

    api_url: str
    ui_url: str
    pid: int | None
    port: int
    managed: bool  # False when the user's own PREFECT_API_URL is used


def _healthy(api_url: str, timeout_s: float = 2.0) -> bool:
    return _health_problem(api_url, timeout_s) is None


def _health_problem(api_url: str, timeout_s: float) -> str | None:
    """Why `GET <api_url>/health` fails, in a few words; None when it answers 200."""
    try:
        url = f"{api_url.rstrip('/')}/health"
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} on /health: is it a Prefect API?"
    except urllib.error.URLError as exc:
        return _reason(exc.reason, timeout_s)
    except (OSError, ValueError) as exc:
        return _reason(exc, timeout_s)
    return None if status == 200 else f"HTTP {status} on /health"


def _reason(cause: object, timeout_s: float) -> str:
    """A connection failure in words: refused, timed out, unknown host, or the OS's text."""
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(cause, TimeoutError | socket.timeout):
        return f"no answer within {timeout_s:g} s"
    if isinstance(cause, socket.gaierror):
        return "unknown host name"
    if isinstance(cause, OSError):
        return (cause.strerror or str(cause) or type(cause).__name__).lower()
    return str(cause) or type(cause).__name__


def _hint(api_url: str, managed: bool) -> str:
    """How to bring the API back: the embedded server's command, else the setting to fix."""
    if managed:
        return "restart it with 'handover server start'"
    parts = urlsplit(api_url)
    if parts.hostname in _LOOPBACK and parts.port is not None:
        if parts.port == DEFAULT_PORT:
            return "start it with 'handover server start' or fix PREFECT_API_URL"
        return f"start it with 'handover server start --port {parts.port}' or fix PREFECT_API_URL"
    return "start that server or fix PREFECT_API_URL"


def _httpx_reason(error: BaseException, httpx: Any) -> str:
    """What happened to a request, in the words `_reason` uses for the health check."""
    text = str(error).lower()
    if isinstance(error, httpx.ConnectError) and "refused" in text:
        return "connection refused"
    if isinstance(error, httpx.TimeoutException):
        return "timed out"
    if isinstance(error, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return "connection lost during a request"
    return text or type(error).__name__


def require_api(info: ServerInfo, timeout_s: float = API_CHECK_TIMEOUT_S) -> None:
    """Raise PrefectApiUnreachable unless the API answers `/health` within `timeout_s`.

    A PREFECT_API_URL that is not an http(s) URL is a UsageError (exit 2).
    """
    parts = urlsplit(info.api_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"PREFECT_API_URL={info.api_url!r} is not an http(s) URL "
            "(expected http://HOST:PORT/api)"
        )
    problem = _health_problem(info.api_url, timeout_s)
    if problem is not None:
        raise PrefectApiUnreachable(info.api_url, problem, _hint(info.api_url, info.managed))
