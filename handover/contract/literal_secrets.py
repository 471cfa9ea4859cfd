"""Secrets written into a command line of the playbook, found before anything runs it.

A dump command is text of the playbook: it is shown in documents and
evidence, travels in bundles and, once run, sits in the host's process list
(`ps`, /proc/PID/cmdline) for any local user to read. So a password in it
(`PGPASSWORD=...`, `--password=...`, `mysqldump -p...`, a URL with
credentials, an AWS key) is refused, and the message says where it goes
instead: the dump's `env:` mapping, whose references are resolved at run time
and handed to the remote command through its environment, never through a
command line (`handover.connectors.ssh.sources`).

Pure functions; the messages name the kind of secret and never quote it.
"""

from __future__ import annotations

import re

__all__ = ["ENV_HELP", "command_secret_kind"]

ENV_HELP = (
    "give it in the dump's `env:` instead (e.g. env: {PGPASSWORD: vault:CONTRACT/ENTRY}; "
    "env:, file:, vault: and prefect-secret: references): the command then reads it from "
    "its environment, never from its command line"
)
"""Where a secret of a command goes, as the refusal says it."""

# NAME=value where NAME says password, secret, token or key (PGPASSWORD, MYSQL_PWD,
# AWS_SECRET_ACCESS_KEY, libpq's `password=` keyword...). A value that is only an
# expansion ($NAME, ${NAME}, "$NAME") holds no literal and is left alone.
_ASSIGNMENT = re.compile(
    r"(?:^|[\s;&|(\"'])(?:export\s+)?"
    r"(?P<name>(?:[A-Za-z_][A-Za-z0-9_]*)?"
    r"(?:PASSWORD|PASSWD|PASSPHRASE|_PWD|SECRET|SECRET_ACCESS_KEY|TOKEN|API_KEY))"
    r"=(?P<value>\S*)",
    re.IGNORECASE,
)
_EXPANSION = re.compile(r"""^["']?\$(?:\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)["']?$""")

# --password=X, --password X, --passwd=X: a value on the command line, even an expansion
# ($X is expanded into the argument list that `ps` shows).
_PASSWORD_OPTION = re.compile(r"(?:^|\s)--(?:password|passwd|pass)(?:=|\s+(?!-))\S", re.IGNORECASE)

# mysql, mysqldump, mariadb-dump: -pSECRET (glued; a lone -p asks, and what follows is the
# database); sshpass: -p SECRET or -pSECRET.
_GLUED_P_PROGRAMS = re.compile(
    r"(?:^|[\s;&|(/])(?:mysql\w*|mariadb[\w-]*)\b[^;&|]*?\s-p[^\s-]"
    r"|(?:^|[\s;&|(/])sshpass\b[^;&|]*?\s-p(?:\s+)?[^\s-]"
)

# scheme://user:password@host (postgres://, mysql://, mongodb+srv://, https://...).
_URL_CREDENTIALS = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/@:]*:[^\s/@]+@")

_AWS_KEY_ID = re.compile(r"(?<![A-Za-z0-9/+=])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Za-z0-9])")


def command_secret_kind(command: str) -> str | None:
    """Name the kind of secret `command` holds (e.g. 'PGPASSWORD=...'), or None.

    The name of an environment variable is said (it is not secret); its
    value never is.
    """
    for match in _ASSIGNMENT.finditer(command):
        value = match.group("value")
        if value and not _EXPANSION.match(value):
            return f"{match.group('name')}=..."
    if _PASSWORD_OPTION.search(command):
        return "a --password option"
    if _GLUED_P_PROGRAMS.search(command):
        return "a password glued to -p"
    if _URL_CREDENTIALS.search(command):
        return "a URL with a password"
    if _AWS_KEY_ID.search(command):
        return "an AWS access key id"
    return None
