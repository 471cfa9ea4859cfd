"""Reaching an SSH server: the TCP connection and the first bytes, with errors that say which.

What fails before authentication decides what a person does next: nothing
listens (refused), the network does not route (unreachable), a firewall
drops packets (no answer to the TCP connect), or something accepts the
connection but is no SSH server, or a hung one (no banner). paramiko
reports the last as a bare "Error reading SSH protocol banner" after its
timeout; here each case is one line naming host and port.

Classification, for the retries of the connector and of the tasks
(`TransientConnectorError` is retried): refusals, unreachable networks,
TCP timeouts and connections closed early are transient; a silence after
the TCP connection (no banner, no key exchange, no answer to
authentication) is permanent, since the full timeout has already been
waited once and retrying would only multiply it.
"""

from __future__ import annotations

import errno
import socket

from handover.errors import ConnectorError, PermanentConnectorError, TransientConnectorError

__all__ = [
    "AUTH_TIMEOUT_S",
    "BANNER_TIMEOUT_S",
    "HANDSHAKE_TIMEOUT_S",
    "handshake_error",
    "open_tcp",
]

BANNER_TIMEOUT_S = 15.0  # OpenSSH answers in milliseconds; a loaded one within a few seconds
HANDSHAKE_TIMEOUT_S = 15.0  # key exchange after the banner (paramiko's own default)
AUTH_TIMEOUT_S = 30.0  # password and PAM checks may be slow; a hung sshd never answers

_BANNER_ERROR = "error reading ssh protocol banner"


def _at(where: str) -> str:
    """The `where: ` prefix of a message; empty when the error's host already says it."""
    return f"{where}: " if where else ""


def open_tcp(name: str, where: str, address: str, port: int, timeout_s: float) -> socket.socket:
    """A TCP connection to `address:port`, or a ConnectorError naming `where` and the cause.

    `name` is the host as the playbook names it (the error's `host`),
    `where` how messages show the address (`user@[10.0.0.5]:2222`; empty
    when `name` is the address already).
    """
    try:
        return socket.create_connection((address, port), timeout=timeout_s)
    except socket.gaierror as exc:
        raise PermanentConnectorError(
            f"{_at(where)}cannot resolve {address!r} ({exc.strerror})", host=name
        ) from exc
    except ConnectionRefusedError as exc:
        raise TransientConnectorError(
            f"{_at(where)}connection refused: is an SSH server listening on port {port}?", host=name
        ) from exc
    except TimeoutError as exc:
        raise TransientConnectorError(
            f"{_at(where)}no answer to the TCP connection within {timeout_s:g} s "
            "(host down, or a firewall dropping packets?)",
            host=name,
        ) from exc
    except OSError as exc:
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            what = "host" if exc.errno == errno.EHOSTUNREACH else "network"
            raise TransientConnectorError(f"{_at(where)}{what} unreachable", host=name) from exc
        reason = exc.strerror or type(exc).__name__
        raise TransientConnectorError(f"{_at(where)}{reason}", host=name) from exc


def handshake_error(
    exc: BaseException, name: str, where: str, banner_timeout_s: float, auth_timeout_s: float
) -> ConnectorError | None:
    """The ConnectorError for a failure after the TCP connection, before a session; else None.

    None for what this module does not recognise (the connector maps the
    rest: host keys, refused credentials).
    """
    import paramiko  # loaded already: only paramiko's handshakes come here

    text = str(exc).strip()
    lowered = text.lower()
    if isinstance(exc, paramiko.SSHException) and lowered.startswith(_BANNER_ERROR):
        if isinstance(exc.__context__, TimeoutError):  # paramiko's socket.timeout
            return PermanentConnectorError(
                f"{_at(where)}no SSH banner within {banner_timeout_s:g} s: "
                "is an SSH server listening there?",
                host=name,
            )
        return TransientConnectorError(
            f"{_at(where)}connection closed before the SSH banner "
            "(sshd refusing connections: MaxStartups, tcp wrappers?)",
            host=name,
        )
    if isinstance(exc, paramiko.SSHException) and lowered.startswith("indecipherable protocol"):
        return PermanentConnectorError(
            f"{_at(where)}the server there does not speak SSH (its first line is no SSH banner)",
            host=name,
        )
    if isinstance(exc, paramiko.AuthenticationException) and lowered == "authentication timeout.":
        return PermanentConnectorError(
            f"{_at(where)}no answer to authentication within {auth_timeout_s:g} s "
            "(a hung sshd, or the PAM/LDAP behind it?)",
            host=name,
        )
    if isinstance(exc, paramiko.AuthenticationException) and "transport shut down" in lowered:
        return TransientConnectorError(
            f"{_at(where)}connection lost during authentication", host=name
        )
    if isinstance(exc, paramiko.SSHException) and lowered == "no existing session":
        return PermanentConnectorError(
            f"{_at(where)}no SSH key exchange within {banner_timeout_s + HANDSHAKE_TIMEOUT_S:g} s",
            host=name,
        )
    if isinstance(exc, EOFError):
        return TransientConnectorError(
            f"{_at(where)}connection closed during the SSH handshake", host=name
        )
    return None
