"""The embedded local Prefect server: SQLite under `.handover/prefect/`.

handover does not rely on Prefect's ephemeral mode: it drops task-run
records at exit, and auditors need complete histories. Unless the user has
set `PREFECT_API_URL` (their own server wins), commands start or reuse a
real `prefect server start` process whose state lives under the handover
home, with analytics off, and point this process at it.

Events (checklist changes, state changes) are an audit record too, and the
server deletes those older than its events retention period (Prefect's
default: 7 days). The embedded server keeps them for
`DEFAULT_EVENTS_RETENTION` (10 years), so that they last at least the
contract's duration (a usual term is 3 to 5 years) plus the period its
records are kept after the exit. A value set by the user
(`PREFECT_SERVER_EVENTS_RETENTION_PERIOD`, or its older name
`PREFECT_EVENTS_RETENTION_PERIOD`) wins: set it longer for a longer
contract. Flow runs, task runs, logs and
artifacts are not deleted by default (Prefect's vacuum of flow runs is off
unless `PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED` names it): leave it off.

This module only spawns and probes processes; it imports nothing from
Prefect so that it can set the environment before Prefect reads it.

A dead API must fail a command at once, in one line: Prefect's client
retries a lost connection with exponential backoff, for minutes, and then
shows a traceback. `ensure_server` therefore asks the API's `/health` with a
short timeout before any flow starts (`require_api`), and `api_error`
turns the httpx errors of an API that dies during a run into the same
PrefectApiUnreachable at the command boundary (`flows.cli` registers it).

Whoever reaches the API can start, resume and delete runs, so the embedded
server requires an auth string (Prefect's HTTP basic auth,
`PREFECT_SERVER_API_AUTH_STRING`); only `GET /api/health` and `/api/ready`
answer without it. The string is generated once, kept 0600 in
`.handover/prefect/api-auth` (`auth_string`), reused by every later start, and
given to this process as `PREFECT_API_AUTH_STRING` only when it talks to the
embedded server: a user's own PREFECT_API_URL gets the user's own setting,
never this one. The UI asks for it in its login form. The Prefect home is
0700 and its files (database, log, state) 0600 whatever the umask: the
database holds the run history of client systems.

A server belongs to the installation (the handover home) that started it.
Two installations starting at the same moment both see port 4200 free; the
one that loses the bind would otherwise find the winner answering `/health`
and talk to it, so one client's bundle would hold another's runs. Starting
therefore holds an fcntl lock on `server.lock` in the Prefect home (one
starter per home), gives the server a random nonce (`HANDOVER_SERVER_NONCE`
in its environment, and as its database `application_name` setting, which
SQLite ignores and `GET /api/admin/settings` shows), and waits until the
API at the chosen port answers, with this home's auth string, with that
nonce. A server that exits because its port was taken is restarted on a
free port (or refused when the port was asked for). `server.json` records
pid, port, host and nonce; `status` trusts it only when the pid's
`/proc/<pid>/environ` carries the nonce and the API answers with it, and
`stop` signals only such a process (never a process group named by a file
alone).
"""

from __future__ import annotations

import base64
import contextlib
import enum
import fcntl
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from flows.server_api import API_CHECK_TIMEOUT_S as API_CHECK_TIMEOUT_S
from flows.server_api import DEFAULT_PORT as DEFAULT_PORT
from flows.server_api import PrefectApiUnreachable as PrefectApiUnreachable
from flows.server_api import ServerInfo as ServerInfo
from flows.server_api import _healthy, _hint, _httpx_reason, _reason
from flows.server_api import require_api as require_api
from handover.errors import HandoverError, UsageError
from handover.state.atomic import PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, write_atomic
from handover.state.home import handover_home

START_TIMEOUT_S = 240.0
DEFAULT_EVENTS_RETENTION = "P3650D"  # ISO 8601: 10 years (see the module docstring)
EVENTS_RETENTION_SETTINGS = (
    "PREFECT_SERVER_EVENTS_RETENTION_PERIOD",
    "PREFECT_EVENTS_RETENTION_PERIOD",
)
AUTH_FILE = "api-auth"  # the embedded server's auth string, under the Prefect home (0600)
AUTH_USER = "handover"  # the UI's form reads "admin:pass": the string is user:token
AUTH_HEADER_PROBE = "admin/version"  # a cheap GET that needs the auth string
#: Files of the Prefect home made private after the server starts (SQLite's too).
PRIVATE_FILES = (
    "prefect.db",
    "prefect.db-wal",
    "prefect.db-shm",
    "server.log",
    "server.json",
    "server.lock",
)
NONCE_ENV = "HANDOVER_SERVER_NONCE"  # in the server's environment: who started it
#: A setting the server shows in /api/admin/settings and SQLite ignores: the nonce, read back.
NONCE_SETTING = "PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_APPLICATION_NAME"
STATE_FILE = "server.json"  # pid, port, host and nonce of the server this home started
LOCK_FILE = "server.lock"  # fcntl lock: one starter (or stopper) per Prefect home
START_ATTEMPTS = 3  # a port taken between the check and the bind: try another free one
_WILDCARD_HOSTS = ("0.0.0.0", "::", "")
_managed_api_url = ""  # the embedded server's API once ensure_server chose it


def prefect_home() -> Path:
    """The embedded server's folder, 0700 whatever the umask (it holds the run history)."""
    path = handover_home() / "prefect"
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, PRIVATE_DIR_MODE)
    return path


def auth_file() -> Path:
    return prefect_home() / AUTH_FILE


def auth_string() -> str:
    """The embedded server's auth string: read from `api-auth`, or created there once.

    Created under a temporary name (0600) and linked into place, so two
    commands starting at once agree on one string: the second link fails and
    that command reads the first one's. A restart reuses it.
    """
    path = auth_file()
    existing = _read_auth(path)
    if existing is not None:
        return existing
    value = f"{AUTH_USER}:{secrets.token_urlsafe(32)}"
    fd, tmp = tempfile.mkstemp(prefix=f".{AUTH_FILE}.", dir=path.parent)  # 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(value + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    found = _read_auth(path)
    if found is None:
        raise HandoverError(f"{path}: empty auth string; remove the file and start again")
    return found


def _read_auth(path: Path) -> str | None:
    """The string in `path` (made 0600 if it was not), None if the file is missing or empty."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    os.chmod(path, PRIVATE_FILE_MODE)
    return text or None


def _state_file() -> Path:
    return prefect_home() / STATE_FILE


def client_environment() -> dict[str, str]:
    """Settings for any process that talks to the embedded server (set before Prefect loads)."""
    home = prefect_home()
    return {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "false",
        "PREFECT_LOCAL_STORAGE_PATH": str(home / "storage"),
        "PREFECT_LOGGING_LEVEL": os.environ.get("PREFECT_LOGGING_LEVEL", "INFO"),
        # Runs beat every 30 s, so a run whose process died is marked Crashed (flows.zombies).
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",
    }


def api_error(error: Exception) -> PrefectApiUnreachable | None:
    """The PrefectApiUnreachable behind an error of Prefect's client, else None.

    Prefect's client raises httpx's transport errors (refused, reset, timed
    out) once its retries are spent, sometimes wrapped in a RuntimeError
    ("Failed to reach API"): look down the chain. Registered with the CLI's
    error translators by `flows.cli`.
    """
    httpx = sys.modules.get("httpx")  # not loaded: the error cannot be one of its
    if httpx is None:
        return None
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, httpx.TransportError):
            api_url = os.environ.get("PREFECT_API_URL", "")
            managed = bool(api_url) and api_url == _managed_api_url
            reason = _httpx_reason(current, httpx)
            return PrefectApiUnreachable(
                api_url or "PREFECT_API_URL", reason, _hint(api_url, managed)
            )
        current = current.__cause__ or current.__context__
    return None


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _client_host(host: str) -> str:
    """Where this machine reaches a server bound to `host` (a wildcard: loopback)."""
    if host in _WILDCARD_HOSTS:
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _info(port: int, pid: int | None, host: str = "127.0.0.1") -> ServerInfo:
    base = f"http://{_client_host(host)}:{port}"
    return ServerInfo(api_url=f"{base}/api", ui_url=base, pid=pid, port=port, managed=True)


def _basic(auth: str) -> str:
    return "Basic " + base64.b64encode(auth.encode("utf-8")).decode("ascii")


def require_auth(
    api_url: str, auth: str | None, managed: bool, timeout_s: float = API_CHECK_TIMEOUT_S
) -> None:
    """Raise UsageError if the API refuses `auth` (HTTP 401): a missing or stale auth string.

    `/health` answers without credentials, so `require_api` cannot tell; this
    asks an endpoint that needs them, once, before any flow starts.
    """
    request = urllib.request.Request(f"{api_url.rstrip('/')}/{AUTH_HEADER_PROBE}")
    if auth:
        request.add_header("Authorization", _basic(auth))
    try:
        with urllib.request.urlopen(request, timeout=timeout_s):
            return
    except urllib.error.HTTPError as exc:
        if exc.code != 401:
            return  # not ours to judge: the flows' own calls will say what is wrong
    except (urllib.error.URLError, OSError, ValueError):
        return  # reachability is require_api's job
    what = "the auth string given" if auth else "requests without an auth string"
    hint = (
        "restart it with 'handover server stop' then 'handover server start'"
        if managed
        else "set PREFECT_API_AUTH_STRING to that server's auth string"
    )
    raise UsageError(f"the Prefect API at {api_url} refuses {what} (HTTP 401); {hint}")


@dataclass(frozen=True)
class _State:
    """What `server.json` says: the process this home started, where, and its nonce."""

    pid: int
    port: int
    host: str
    nonce: str | None  # None: written by a handover from before the nonce


def _read_state() -> _State | None:
    try:
        raw = json.loads(_state_file().read_text())
        return _State(
            pid=int(raw["pid"]),
            port=int(raw["port"]),
            host=str(raw.get("host", "127.0.0.1")),
            nonce=str(raw["nonce"]) if raw.get("nonce") else None,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _nonce_value(nonce: str) -> str:
    return f"handover-{nonce}"


def _process_environ(pid: int) -> dict[str, str] | None:
    """The environment `pid` was started with (Linux /proc), None if it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    pairs = (item.partition(b"=") for item in raw.split(b"\0") if item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, _sep, v in pairs}


def _is_our_process(state: _State) -> bool:
    """Is `state.pid` alive and the server this home started (its environment says so)?

    With a nonce: the process carries `HANDOVER_SERVER_NONCE=<nonce>`. A
    state from before the nonce: the process is a `prefect server` whose
    PREFECT_HOME is this home. A pid reused by another process, or one whose
    environment cannot be read, is not ours.
    """
    if not _pid_alive(state.pid):
        return False
    if not Path("/proc/self/environ").exists() and state.nonce is not None:
        # No /proc (macOS, BSD): the API answering with the nonce proves the process that
        # was given it lives, and its pid (written once it answered) cannot be reused.
        return _answers_with(_info(state.port, state.pid, state.host).api_url, state.nonce)
    environ = _process_environ(state.pid)
    if environ is None:
        return False
    if state.nonce is not None:
        return environ.get(NONCE_ENV) == state.nonce
    try:
        cmdline = Path(f"/proc/{state.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return (
        b"prefect" in cmdline
        and b"server" in cmdline
        and environ.get("PREFECT_HOME") == str(prefect_home())
    )


def _answers_with(api_url: str, nonce: str, timeout_s: float = API_CHECK_TIMEOUT_S) -> bool:
    """Does the API at `api_url`, asked with this home's auth string, show our nonce?

    Another home's server refuses our auth string (401); a server of ours
    from an earlier start shows another nonce.
    """
    request = urllib.request.Request(f"{api_url.rstrip('/')}/admin/settings")
    request.add_header("Authorization", _basic(auth_string()))
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            settings = json.loads(response.read(1_000_000))
    except (urllib.error.URLError, OSError, ValueError):
        return False
    try:
        shown = settings["server"]["database"]["sqlalchemy"]["connect_args"]["application_name"]
    except (KeyError, TypeError):
        return False
    return bool(shown == _nonce_value(nonce))


def status() -> ServerInfo | None:
    """The embedded server if it runs, is this home's, and answers with its nonce; else None."""
    state = _read_state()
    if state is None or not _is_our_process(state):
        return None
    info = _info(state.port, state.pid, state.host)
    if state.nonce is None or not _healthy(info.api_url):
        return None  # a server from before the nonce: `start` says to restart it
    return info if _answers_with(info.api_url, state.nonce) else None


def _refuse_older_server() -> None:
    """Raise if this home's server was started by a handover from before the nonce.

    It cannot prove which server answers on its port: restart it rather
    than start a second one next to it.
    """
    state = _read_state()
    if state is not None and state.nonce is None and _is_our_process(state):
        raise HandoverError(
            f"the Prefect server of this home (pid {state.pid}, port {state.port}) was started "
            "by an older handover: restart it with 'handover server stop' then "
            "'handover server start'"
        )


@contextlib.contextmanager
def _home_lock() -> Iterator[None]:
    """An exclusive fcntl lock on `server.lock`: one start or stop at a time per home.

    A second starter waits here, then finds the first one's server running.
    The kernel releases the lock if the process dies.
    """
    path = prefect_home() / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def start(port: int | None = None, host: str = "127.0.0.1") -> ServerInfo:
    """Start this home's server (or return the one already running) and wait until it answers.

    `host` is the address it listens on (loopback by default; the auth
    string is always required, so any address is allowed, but requests
    beyond loopback need TLS in front: see deployments/README.md).
    """
    with _home_lock():
        running = status()
        if running is not None:
            _refuse_open_server(running)
            return running
        _refuse_older_server()
        _check_host(host)
        asked = port
        for _attempt in range(START_ATTEMPTS):
            chosen = _choose_port(asked, host)
            info = _start_on(chosen, host)
            if info is not None:
                return info
            if asked is not None:
                raise HandoverError(
                    f"port {asked} was taken by another process while the server started: "
                    "choose another with --port"
                )
        raise HandoverError(
            f"the Prefect server could not bind a port ({START_ATTEMPTS} tries, each taken "
            f"by another process first; log {prefect_home() / 'server.log'})"
        )


def _check_host(host: str) -> None:
    """Raise UsageError unless this machine can listen on `host` (an address of its own)."""
    try:
        infos = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)
        family, _type, _proto, _name, address = infos[0]
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind(address)
    except (OSError, IndexError) as exc:
        raise UsageError(
            f"--host {host}: the server cannot listen there ({_reason(exc, 0)}); "
            "give an address of this machine, e.g. 127.0.0.1"
        ) from None


def _start_on(port: int, host: str) -> ServerInfo | None:
    """Spawn the server on `port` and wait until it answers with its nonce.

    None if it exited because another process bound the port first.
    """
    nonce = secrets.token_hex(16)
    log_path = prefect_home() / "server.log"
    process = _spawn_server(port, log_path, nonce, host)
    info = _info(port, process.pid, host)
    if not _wait_until_ours(process, info, log_path, nonce, host):
        return None
    state = {"pid": process.pid, "port": port, "host": host, "nonce": nonce}
    write_atomic(_state_file(), json.dumps(state).encode())
    _make_private(prefect_home())
    return info


def _make_private(home: Path) -> None:
    """chmod 0600 the database, its journal files, the log and the state file.

    The server runs with umask 077, so files it creates are private already;
    this also closes a database created before that (by an older handover).
    """
    for name in PRIVATE_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(home / name, PRIVATE_FILE_MODE)


def _refuse_open_server(info: ServerInfo) -> None:
    """Raise if the running embedded server answers without an auth string.

    A server started by a handover from before the auth string keeps
    running after an upgrade, open to anyone who reaches its port: say so
    rather than use it.
    """
    try:
        with urllib.request.urlopen(
            f"{info.api_url}/{AUTH_HEADER_PROBE}", timeout=API_CHECK_TIMEOUT_S
        ):
            pass
    except (urllib.error.URLError, OSError, ValueError):
        return  # 401 (as it should be), or no answer: the health checks deal with that
    raise HandoverError(
        f"the Prefect server at {info.api_url} (pid {info.pid}) answers without an auth "
        "string: restart it with 'handover server stop' then 'handover server start'"
    )


def _choose_port(port: int | None, host: str = "127.0.0.1") -> int:
    """The port asked for (it must be free), else HANDOVER_PREFECT_PORT or 4200, else any."""
    bind_host = "127.0.0.1" if host in _WILDCARD_HOSTS else host
    if port is None:
        wanted = int(os.environ.get("HANDOVER_PREFECT_PORT", DEFAULT_PORT))
        return wanted if _port_free(wanted, bind_host) else _free_port()
    if not _port_free(port, bind_host):
        raise HandoverError(f"port {port} is in use: choose another with --port")
    return port


def _server_environment(port: int, nonce: str = "", host: str = "127.0.0.1") -> dict[str, str]:
    """The server's settings: its SQLite database under the handover home, this port only,
    its nonce, and events kept for years unless the user chose otherwise."""
    home = prefect_home()
    env = {**os.environ, **client_environment()}
    env.pop("PREFECT_API_URL", None)
    base = f"http://{_client_host(host)}:{port}"
    env.update(
        {
            "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
            "PREFECT_SERVER_API_HOST": host,
            "PREFECT_SERVER_API_PORT": str(port),
            # On any port but 4200 the UI must be told where its API is.
            "PREFECT_UI_API_URL": f"{base}/api",
            "PREFECT_UI_URL": base,
            # Every API request but /health needs it; the UI shows its login form.
            "PREFECT_SERVER_API_AUTH_STRING": auth_string(),
            "PREFECT_API_AUTH_STRING": auth_string(),
            # Who started it: read back from /proc (stop) and the API (start, status).
            NONCE_ENV: nonce,
            NONCE_SETTING: _nonce_value(nonce),
        }
    )
    if not any(env.get(name) for name in EVENTS_RETENTION_SETTINGS):
        env["PREFECT_SERVER_EVENTS_RETENTION_PERIOD"] = DEFAULT_EVENTS_RETENTION
    return env


def _spawn_server(
    port: int, log_path: Path, nonce: str, host: str = "127.0.0.1"
) -> subprocess.Popen[bytes]:
    """`prefect server start` in its own session (stopped as a group), output to `log_path`.

    Umask 077: the SQLite database and whatever else the server creates are
    private from their first byte.
    """
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)
    os.chmod(log_path, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "ab") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                host,
                "--port",
                str(port),
                "--analytics-off",
                "--no-background",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_server_environment(port, nonce, host),
            cwd=prefect_home(),
            start_new_session=True,
            umask=0o077,
        )


def _wait_until_ours(
    process: subprocess.Popen[bytes], info: ServerInfo, log_path: Path, nonce: str, host: str
) -> bool:
    """True once the API at the port answers with our nonce; False if our process exited
    because another one holds the port; raise with the log's tail otherwise or if slow.

    `/health` alone is not enough: while ours is still starting, the
    answer may come from another installation's server on the same port.
    """
    deadline = time.monotonic() + START_TIMEOUT_S
    bind_host = "127.0.0.1" if host in _WILDCARD_HOSTS else host
    while time.monotonic() < deadline:
        if process.poll() is not None:
            if not _port_free(info.port, bind_host):
                return False  # lost the bind to another process: the caller tries another port
            tail = log_path.read_text(errors="replace")[-2000:]
            raise HandoverError(f"the Prefect server exited at start (log {log_path}):\n{tail}")
        if _healthy(info.api_url) and _answers_with(info.api_url, nonce):
            return True
        time.sleep(0.3)
    _terminate(process.pid)
    raise HandoverError(
        f"the Prefect server did not answer within {START_TIMEOUT_S:.0f}s (log {log_path})"
    )


class StopOutcome(enum.Enum):
    """What `stop_server` did."""

    STOPPED = "stopped"
    NOT_RUNNING = "not running"
    NOT_OURS = "not ours"  # server.json named a process this home did not start: left alone


def stop() -> bool:
    """Stop the embedded server; True if one was running (see `stop_server`)."""
    return stop_server()[0] is StopOutcome.STOPPED


def stop_server() -> tuple[StopOutcome, int | None]:
    """Stop this home's server, and only it: the outcome and the pid `server.json` named.

    The pid is signalled only if its environment carries this home's nonce
    (`_is_our_process`): a pid reused by another process, or a state file
    edited by hand, is never signalled. The state file is removed either way
    (it no longer describes a server of ours).
    """
    with _home_lock():
        state = _read_state()
        if state is None:
            _state_file().unlink(missing_ok=True)
            return StopOutcome.NOT_RUNNING, None
        if not _pid_alive(state.pid):
            outcome = StopOutcome.NOT_RUNNING
        elif not _is_our_process(state):
            outcome = StopOutcome.NOT_OURS
        else:
            _terminate(state.pid)
            outcome = StopOutcome.STOPPED
        _state_file().unlink(missing_ok=True)
        return outcome, state.pid


def _terminate(pid: int) -> None:
    """SIGTERM our server (its process group: it leads a session of its own), SIGKILL if slow.

    Called only for a pid known to be ours (our child, or `_is_our_process`).
    """

    def signal_it(sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(pid) == pid:  # started with start_new_session: its uvicorn too
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)

    signal_it(signal.SIGTERM)
    deadline = time.monotonic() + 20
    while _pid_alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)
    if _pid_alive(pid):
        signal_it(signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def ensure_server() -> ServerInfo:
    """Point this process at a Prefect API: the user's PREFECT_API_URL, else the embedded server.

    Either way the API has answered `/health` when this returns: a user's
    URL where nothing answers raises PrefectApiUnreachable within
    API_CHECK_TIMEOUT_S, instead of Prefect retrying it for minutes.
    Must run before Prefect's settings are first read (before importing flows).
    The embedded server's auth string goes into PREFECT_API_AUTH_STRING; a
    user's server gets the user's own (an auth string refused fails here).
    """
    for key, value in client_environment().items():
        os.environ.setdefault(key, value)
    global _managed_api_url
    user_url = os.environ.get("PREFECT_API_URL")
    if user_url:
        ui = os.environ.get("PREFECT_UI_URL", user_url.removesuffix("/api"))
        info = ServerInfo(api_url=user_url, ui_url=ui, pid=None, port=0, managed=False)
        require_api(info)
        require_auth(info.api_url, os.environ.get("PREFECT_API_AUTH_STRING"), managed=False)
        ensure_automations()
        return info
    info = start()
    auth = auth_string()
    require_auth(info.api_url, auth, managed=True)
    os.environ["PREFECT_API_AUTH_STRING"] = auth
    os.environ["PREFECT_API_URL"] = info.api_url
    os.environ["PREFECT_UI_URL"] = info.ui_url
    _managed_api_url = info.api_url
    ensure_automations()
    return info


def ensure_automations() -> None:
    """The server-side automations handover relies on (`flows.zombies`); never fatal.

    Called once the API answers with this process's credentials. A server
    that refuses (an older one, no automations service) costs a warning: runs
    still work, only a run whose process died stays Running until a rerun.
    """
    try:
        from flows.zombies import ensure_zombie_automation

        ensure_zombie_automation()
    except Exception as exc:
        logging.getLogger(__name__).warning("the zombie-run automation could not be made: %s", exc)
