"""README.txt of a bundle: how a client checks, opens and uses it with standard tools only.

The prose is not here: it lives in one catalogue per language
(`handover/bundle/templates/readme.<lang>.txt`, sections rendered with
`string.Template`), which a provider may replace by putting a file of the
same name in `$HANDOVER_HOME/templates/` (a section the replacement lacks
comes from the packaged one). This module builds what every language shares:
the command lines (for Linux, macOS and Windows), the dates in the
contract's time zone, the contacts, and which restore instructions the
bundle needs.

It names no client file: only the bundle's own files (volume names carry
host and dataset labels, which the outer listing shows anyway); a database
dump is reached with a wildcard on its folder. Every command line starts
with a prompt that names its system (`    $ ` Linux, `    % ` macOS,
`    PS> ` Windows PowerShell, `    > ` a database server), so that tests
can run exactly what the client reads.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from handover.errors import UsageError

NAMESPACE = "handover-bundle"
ACCEPTANCE_NAMESPACE = "handover-acceptance"  # handover.exit.acceptance.NAMESPACE (core layering)
SIGNER_IDENTITY = "provider"
COMMAND_PREFIX = "    $ "  # Linux (bash)
MACOS_PREFIX = "    % "  # macOS Terminal (zsh)
WINDOWS_PREFIX = "    PS> "  # Windows PowerShell
DATABASE_PREFIX = "    > "  # on the machine that reaches the database server
KEY_PLACEHOLDER = "key.txt"
SIGNING_KEY_PLACEHOLDER = "~/.ssh/id_ed25519"
WINDOWS_SIGNING_KEY = "$HOME\\.ssh\\id_ed25519"
PASSWORD_FILE = "credentials-password.txt.age"
ACCEPTANCE_FILE = "acceptance.txt"
INDEX_FOLDER = "index"  # where `handover open` puts the index, beside the volume folders
TEMPLATE_FOLDER = "templates"  # under HANDOVER_HOME: a provider's own readme.<lang>.txt
# What the writer names volumes (`volumes/0001-web01-www.tar.age`); a reader accepts no other.
_VOLUME_FILE = re.compile(r"volumes/[0-9]+-[A-Za-z0-9_][A-Za-z0-9._-]{0,120}\.tar\.age")
_SECTION = re.compile(r"^%% ([a-z0-9-]+)$")
_PG_CUSTOM = (".dump", ".pgdump", ".backup")
_SQL = (".sql.gz", ".sql")

Language = Literal["fr", "en"]
Engine = Literal["postgresql", "mysql"]
RestoreKind = Literal["files", "pg-custom", "pg-sql", "mysql", "sql"]


def volume_folder(volume_file: str) -> str:
    """Where a volume is unpacked: `volumes/0001-web01-www.tar.age` -> `0001-web01-www`.

    Raises ValueError for a name the writer never produces (`volumes/...tar.age`
    would give `..`): readers check `volume_file_problem` first.
    """
    if volume_file_problem(volume_file) is not None:
        raise ValueError(f"not a volume file name: {volume_file!r}")
    name = volume_file.rsplit("/", 1)[-1]
    return name.removesuffix(".tar.age")


def volume_file_problem(volume_file: str) -> str | None:
    """Why a manifest's volume `file` is not one a reader may use, or None.

    The name decides a folder `handover open` creates: only the names the
    writer gives (number, dash, label of letters, digits, `.`, `_`, `-`) pass.
    """
    if not _VOLUME_FILE.fullmatch(volume_file):
        return "is not named volumes/NNNN-<label>.tar.age: refused"
    return None


class ReadmeContact(BaseModel):
    """Someone at the provider the client may call, as the playbook names them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    role: str | None = None
    email: str | None = None
    phone: str | None = None
    level: int | None = None  # escalation level, None for a plain contact


class ReadmeFacts(BaseModel):
    """What the contract and the exit tell the client's guide; the defaults suit a bare seal.

    `dump_engines` maps volume numbers to the database a dump came from (read
    from its command); the README otherwise guesses from the file's suffix.
    `delivery` decides where a signed acceptance goes; None (a bundle sealed
    outside an exit) leaves the acceptance out.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    language: Language = "en"
    timezone: str = "UTC"
    bundle_name: str | None = None
    provider: str = ""
    contacts: list[ReadmeContact] = Field(default_factory=list)
    retrieval_ends: date | None = None  # first day after the retrieval period
    erasure_by: date | None = None
    credentials: bool = False  # credentials.kdbx in the index, its password beside the bundle
    delivery: Literal["local", "s3"] | None = None  # reversibility.delivery.kind
    dump_engines: dict[int, Engine] = Field(default_factory=dict)
    template_dir: str | None = None  # a provider's readme.<lang>.txt overrides the packaged one

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        """The playbook checks it too; here so that a bad zone never reaches ZoneInfo unchecked."""
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value[:60]!r}") from None
        return value


class VolumeFacts(BaseModel):
    """A volume as the README sees it: its file, number and the paths of its first file members.

    Two paths at most are enough: only a volume of one file (a database dump)
    gets restore instructions of its own. Not every path: a volume of 100,000
    files held them all (~8 MB) while the bundle was finished.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str
    number: int
    member_files: list[str] = Field(default_factory=list, max_length=2)


def dump_engine(command: str) -> Engine | None:
    """The database a dump command reads (pg_dump, mysqldump...), from its program name."""
    words = command.split()
    programs = [PurePosixPath(w).name for w in words if "=" not in w]
    for program in programs:
        if program in ("pg_dump", "pg_dumpall"):
            return "postgresql"
        if program in ("mysqldump", "mariadb-dump", "mysqlpump"):
            return "mysql"
    return None


def restore_kind(volume: VolumeFacts, engine: Engine | None) -> tuple[RestoreKind, str]:
    """How a volume is restored, and the suffix of its dump ("" for files).

    A volume whose only file sits at its top and ends like a dump is a dump:
    `.dump`, `.pgdump`, `.backup` are PostgreSQL custom-format archives
    (pg_restore), `.sql` and `.sql.gz` plain SQL for psql or mysql as the
    engine says (both when it is unknown).
    """
    if len(volume.member_files) != 1 or "/" in volume.member_files[0].strip("/"):
        return "files", ""
    name = volume.member_files[0].lower()
    for suffix in _SQL:
        if name.endswith(suffix):
            kinds: dict[Engine | None, RestoreKind] = {
                "postgresql": "pg-sql",
                "mysql": "mysql",
                None: "sql",
            }
            return kinds[engine], suffix
    if name.endswith(_PG_CUSTOM):
        return "pg-custom", "." + name.rsplit(".", 1)[-1]
    return "files", ""


def render_readme(
    volume_files: Sequence[str] | Sequence[VolumeFacts],
    created: str,
    provider_fingerprint: str,
    title: str = "",
    facts: ReadmeFacts | None = None,
) -> str:
    """The README.txt text; `volume_files` are bundle-relative paths or VolumeFacts.

    UsageError when a provider's template is unreadable or names an unknown
    placeholder: the seal stops with one line rather than a README with holes.
    """
    facts = facts or ReadmeFacts()
    volumes = [
        v if isinstance(v, VolumeFacts) else VolumeFacts(file=str(v), number=i)
        for i, v in enumerate(volume_files, start=1)
    ]
    catalogue = load_catalogue(facts.language, facts.template_dir)
    zone = ZoneInfo(facts.timezone)
    exit_folder = f"{facts.bundle_name}.exit" if facts.bundle_name else ""
    values = {
        "title": title,
        "title_suffix": f": {title}" if title else "",
        "created": _moment(datetime.fromisoformat(created), zone),
        "fingerprint": provider_fingerprint,
        "volume_count": str(len(volumes)),
        "volume_list": "\n".join(f"                    {v.file}" for v in volumes),
        "key": KEY_PLACEHOLDER,
        "exit_folder": exit_folder,
        "provider": facts.provider,
        "check_linux": _commands(COMMAND_PREFIX, ["sha256sum -c SHA256SUMS"]),
        "check_macos": _commands(MACOS_PREFIX, ["shasum -a 256 -c SHA256SUMS"]),
        "check_windows": _commands(WINDOWS_PREFIX, [_ps_check("SHA256SUMS", "")]),
        "verify_linux": _commands(COMMAND_PREFIX, _verify_posix()),
        "verify_macos": _commands(MACOS_PREFIX, _verify_posix()),
        "verify_windows": _commands(WINDOWS_PREFIX, _verify_windows()),
        "unpack_linux": _unpack(COMMAND_PREFIX, volumes, "sha256sum"),
        "unpack_macos": _unpack(MACOS_PREFIX, volumes, "shasum -a 256"),
        "unpack_windows": _unpack_windows(volumes),
        "credentials": _credentials(catalogue, facts, exit_folder),
        "restore": _restore(catalogue, facts, volumes),
        "deadlines": _deadlines(catalogue, facts, zone),
        "acceptance": _acceptance(catalogue, facts, exit_folder),
        "contacts": _contacts(catalogue, facts),
    }
    text = re.sub(r"\n{3,}", "\n\n", _fill(catalogue, "main", values)).strip("\n")
    return _underline(text) + "\n"


def _underline(text: str) -> str:
    """Make each `====` or `----` rule as long as the heading above it (titles vary)."""
    lines = text.split("\n")
    for i in range(1, len(lines)):
        rule, heading = lines[i], lines[i - 1]
        if len(rule) >= 3 and set(rule) in ({"="}, {"-"}) and heading.strip():
            lines[i] = rule[0] * len(heading)
    return "\n".join(lines)


def load_catalogue(language: Language, template_dir: str | None = None) -> dict[str, str]:
    """The sections of `readme.<language>.txt`: the provider's override over the packaged one."""
    name = f"readme.{language}.txt"
    packaged = resources.files("handover.bundle").joinpath(TEMPLATE_FOLDER, name)
    sections = parse_catalogue(packaged.read_text(encoding="utf-8"))
    override = Path(template_dir) / name if template_dir else None
    if override is not None and override.is_file():
        try:
            sections.update(parse_catalogue(override.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{override}: cannot read the README template ({exc})") from None
    return sections


def parse_catalogue(text: str) -> dict[str, str]:
    """Split a catalogue into its sections: a line `%% name` starts each one."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        match = _SECTION.match(line)
        if match:
            current = sections.setdefault(match.group(1), [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines).strip("\n") for name, lines in sections.items()}


def _fill(catalogue: Mapping[str, str], section: str, values: Mapping[str, str]) -> str:
    try:
        template = string.Template(catalogue[section])
    except KeyError:
        raise UsageError(f"README template: no section %% {section}") from None
    try:
        return template.substitute(values)
    except KeyError as exc:
        raise UsageError(
            f"README template, section {section}: unknown placeholder ${exc.args[0]}"
        ) from None
    except ValueError as exc:
        raise UsageError(f"README template, section {section}: {exc} (write $$ for $)") from None


def _commands(prefix: str, lines: Sequence[str]) -> str:
    return "\n".join(prefix + line for line in lines)


def _moment(moment: datetime, zone: ZoneInfo) -> str:
    """`2027-03-01 00:00 (Europe/Paris, UTC+01:00)`: the offset shown, so no one guesses it."""
    local = moment.astimezone(zone)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} ({zone.key}, UTC{offset[:3]}:{offset[3:]})"


def _day_start(day: date, zone: ZoneInfo) -> str:
    return _moment(datetime.combine(day, time(0, 0), tzinfo=zone), zone)


def _day_end(day: date, zone: ZoneInfo) -> str:
    return _moment(datetime.combine(day, time(23, 59), tzinfo=zone), zone)


def _ps_check(sums: str, folder: str) -> str:
    """PowerShell has no `sha256sum -c`: compare each line of a SHA256SUMS with Get-FileHash."""
    prefix = f"{folder}\\" if folder else ""
    return (
        f"Get-Content -Encoding UTF8 {prefix}{sums} | ForEach-Object "
        "{ $h, $f = $_ -split '  ', 2; "
        f'if ((Get-FileHash -Algorithm SHA256 -LiteralPath "{prefix}$f").Hash -eq $h) '
        '{ "${f}: OK" } else { "${f}: FAILED" } }'
    )


def _verify_posix() -> list[str]:
    return [
        "ssh-keygen -lf provider.pub",
        f'echo "{SIGNER_IDENTITY} $(cat provider.pub)" > allowed_signers',
        f"ssh-keygen -Y verify -f allowed_signers -I {SIGNER_IDENTITY} "
        f"-n {NAMESPACE} -s SHA256SUMS.sig < SHA256SUMS",
    ]


def _verify_windows() -> list[str]:
    """cmd's `<` passes SHA256SUMS byte for byte, which a PowerShell pipe would not."""
    return [
        "ssh-keygen -lf provider.pub",
        f'Set-Content -Encoding ascii allowed_signers ("{SIGNER_IDENTITY} " '
        "+ (Get-Content provider.pub))",
        f'cmd /c "ssh-keygen -Y verify -f allowed_signers -I {SIGNER_IDENTITY} '
        f'-n {NAMESPACE} -s SHA256SUMS.sig < SHA256SUMS"',
    ]


def _unpack(prefix: str, volumes: Sequence[VolumeFacts], sha: str) -> str:
    """Three commands per volume and for the index: make its folder, decrypt and unpack, check."""
    lines: list[str] = []
    pairs = [(v.file, f"restored/{volume_folder(v.file)}") for v in volumes]
    for source, folder in [*pairs, ("index.tar.age", f"restored/{INDEX_FOLDER}")]:
        lines += [
            f"mkdir -p {folder}",
            f"age -d -i {KEY_PLACEHOLDER} {source} | tar -x -C {folder}",
            f"(cd {folder} && {sha} -c --quiet SHA256SUMS && echo OK)",
        ]
    return _commands(prefix, lines)


def _unpack_windows(volumes: Sequence[VolumeFacts]) -> str:
    """cmd's pipe for age into tar (Windows' own tar.exe): a PowerShell 5 pipe alters bytes."""
    lines: list[str] = []
    pairs = [(v.file, f"restored\\{volume_folder(v.file)}") for v in volumes]
    for source, folder in [*pairs, ("index.tar.age", f"restored\\{INDEX_FOLDER}")]:
        lines += [
            f"New-Item -ItemType Directory -Force {folder} | Out-Null",
            f'cmd /c "age -d -i {KEY_PLACEHOLDER} {source.replace("/", chr(92))} '
            f'| tar -x -C {folder}"',
            _ps_check("SHA256SUMS", folder),
        ]
    return _commands(WINDOWS_PREFIX, lines)


def _credentials(catalogue: Mapping[str, str], facts: ReadmeFacts, exit_folder: str) -> str:
    if not facts.credentials:
        return ""
    beside = f"../{exit_folder}/{PASSWORD_FILE}" if exit_folder else PASSWORD_FILE
    age = f"age -d -i {KEY_PLACEHOLDER} "
    return _fill(
        catalogue,
        "credentials",
        {
            "password_file": PASSWORD_FILE,
            "exit_folder": exit_folder,
            "decrypt_linux": _commands(COMMAND_PREFIX, [age + beside]),
            "decrypt_macos": _commands(MACOS_PREFIX, [age + beside]),
            "decrypt_windows": _commands(WINDOWS_PREFIX, [age + beside.replace("/", "\\")]),
        },
    )


def _restore(
    catalogue: Mapping[str, str], facts: ReadmeFacts, volumes: Sequence[VolumeFacts]
) -> str:
    """One paragraph per kind of data the bundle holds, naming the folders it applies to."""
    by_kind: dict[RestoreKind, list[tuple[str, str]]] = {}
    for volume in volumes:
        kind, suffix = restore_kind(volume, facts.dump_engines.get(volume.number))
        by_kind.setdefault(kind, []).append((f"restored/{volume_folder(volume.file)}", suffix))
    parts = [_fill(catalogue, "restore", {})]
    order: list[RestoreKind] = ["files", "pg-custom", "pg-sql", "mysql", "sql"]
    for kind in order:
        if kind not in by_kind:
            continue
        entries = by_kind[kind]
        folders = "\n".join(f"  {folder}" for folder, _ in entries)
        commands = _commands(DATABASE_PREFIX, _restore_commands(kind, entries))
        parts.append(
            _fill(catalogue, f"restore-{kind}", {"folders": folders, "commands": commands})
        )
    return "\n\n".join(parts)


def _restore_commands(kind: RestoreKind, entries: Sequence[tuple[str, str]]) -> list[str]:
    """The database commands, with NAMES IN CAPITALS for the client to replace."""
    lines: list[str] = []
    for folder, suffix in entries:
        dump = f"{folder}/*{suffix}"
        psql = "psql -h DBHOST -U DBUSER -d NEWDB"
        mysql = "mysql -h DBHOST -u DBUSER -p NEWDB"
        if kind == "pg-custom":
            lines += [
                "createdb -h DBHOST -U DBUSER NEWDB",
                f"pg_restore -h DBHOST -U DBUSER -d NEWDB --no-owner --no-acl {dump}",
            ]
        elif kind in ("pg-sql", "mysql", "sql"):
            tools = {"pg-sql": [psql], "mysql": [mysql], "sql": [psql, mysql]}[kind]
            for tool in tools:
                if suffix == ".sql.gz":
                    lines.append(f"gunzip -c {dump} | {tool}")
                else:
                    lines.append(f"{tool} < {dump}")
        else:
            lines.append(f"rsync -a --dry-run {folder}/ DESTINATION/")
    return lines


def _deadlines(catalogue: Mapping[str, str], facts: ReadmeFacts, zone: ZoneInfo) -> str:
    if facts.retrieval_ends is None or facts.erasure_by is None:
        return _fill(catalogue, "no-deadlines", {"timezone": zone.key})
    return _fill(
        catalogue,
        "deadlines",
        {
            "retrieval_ends": _day_start(facts.retrieval_ends, zone),
            "erasure_by": _day_end(facts.erasure_by, zone),
            "timezone": zone.key,
        },
    )


def _acceptance(catalogue: Mapping[str, str], facts: ReadmeFacts, exit_folder: str) -> str:
    if facts.delivery is None or not exit_folder:
        return ""
    sign = f"ssh-keygen -Y sign -n {ACCEPTANCE_NAMESPACE} -f"
    posix = [f"{sign} {SIGNING_KEY_PLACEHOLDER} {ACCEPTANCE_FILE}"]
    windows = [f"{sign} {WINDOWS_SIGNING_KEY} {ACCEPTANCE_FILE}"]
    if facts.delivery == "local":
        posix.append(f"cp {ACCEPTANCE_FILE} {ACCEPTANCE_FILE}.sig ../{exit_folder}/")
        windows.append(f"Copy-Item {ACCEPTANCE_FILE}, {ACCEPTANCE_FILE}.sig ..\\{exit_folder}\\")
    return _fill(
        catalogue,
        f"acceptance-{facts.delivery}",
        {
            "exit_folder": exit_folder,
            "namespace": ACCEPTANCE_NAMESPACE,
            "sign_linux": _commands(COMMAND_PREFIX, posix),
            "sign_macos": _commands(MACOS_PREFIX, posix),
            "sign_windows": _commands(WINDOWS_PREFIX, windows),
        },
    )


def _contacts(catalogue: Mapping[str, str], facts: ReadmeFacts) -> str:
    if not facts.contacts:
        return _fill(catalogue, "no-contacts", {"provider": facts.provider})
    lines = []
    for c in sorted(facts.contacts, key=lambda c: (c.level is not None, c.level or 0)):
        who = c.name + (f" ({c.role})" if c.role else "")
        reach = " - ".join(x for x in (c.phone, c.email) if x)
        head = f"  {c.level}. " if c.level is not None else "  - "
        lines.append(head + who + (f": {reach}" if reach else ""))
    return _fill(catalogue, "contacts", {"provider": facts.provider, "lines": "\n".join(lines)})
