"""The inventory of one host: OS, packages, services, ports, disks, users, cron, certificates.

Takeover needs a faithful picture of every host ("état des lieux") and
reversibility a final one, on hosts we do not control: some have systemd and
`ss`, some are busybox with half the tools missing, some accounts may not read
everything. So collection is ONE POSIX sh script (`INVENTORY_SCRIPT`), run
once per host (locally with `sh -s`, remotely over SSH the same way: one
round trip), that prints marked sections and says which facts it could not
read. Everything clever happens here, in Python, where it is testable:
parsing, /proc/net hex decoding, certificate parsing with `cryptography`
(openssl may be missing on the host), end-of-life flags.

Facts that could not be read land in `Inventory.unreadable` as "fact: why",
so a report shows a gap as a gap instead of an empty list that looks clean.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re
import shlex
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib import resources

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from pydantic import BaseModel, ConfigDict

__all__ = [
    "INVENTORY_SCRIPT",
    "Certificate",
    "CronEntry",
    "Disk",
    "Inventory",
    "ListeningPort",
    "Package",
    "Service",
    "User",
    "eol_flags",
    "inventory_command",
    "inventory_from_files",
    "parse_inventory",
]

INVENTORY_SCRIPT: str = (
    resources.files("handover.estate").joinpath("inventory.sh").read_text(encoding="utf-8")
)
"""The POSIX sh script that prints a host's facts; feed it to `sh -s -- CERT_PATH...`."""

_MARKER = "==handover:"

# Filesystems that are not disks an operator watches (memory, kernel views,
# read-only snap images that are always 100 % full).
_PSEUDO_FS = frozenset(
    {
        "proc",
        "sysfs",
        "devtmpfs",
        "devpts",
        "tmpfs",
        "cgroup",
        "cgroup2",
        "securityfs",
        "pstore",
        "debugfs",
        "tracefs",
        "mqueue",
        "hugetlbfs",
        "configfs",
        "fusectl",
        "bpf",
        "binfmt_misc",
        "autofs",
        "squashfs",
        "efivarfs",
        "ramfs",
        "nsfs",
        "rpc_pipefs",
        "shm",
    }
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Package(_Model):
    """An installed package, as the package manager names it."""

    name: str
    version: str


class Service(_Model):
    """A service and its state as the service manager reports it (running, exited, dead...)."""

    name: str
    state: str


class ListeningPort(_Model):
    """A listening TCP socket or bound UDP socket; `process` only when the account may see it."""

    proto: str  # tcp | udp
    address: str
    port: int
    process: str | None = None


class Disk(_Model):
    """One mounted filesystem and its usage in bytes."""

    mount: str
    fstype: str
    size_bytes: int
    used_bytes: int
    avail_bytes: int
    used_percent: float


class User(_Model):
    """One account of /etc/passwd (human and system accounts alike)."""

    name: str
    uid: int
    gid: int
    home: str
    shell: str

    @property
    def is_human(self) -> bool:
        """True for accounts people log into: uid ≥ 1000 (or root) with a real shell."""
        login = not self.shell.endswith(("nologin", "/false", "/sync", "/shutdown", "/halt"))
        return login and (self.uid == 0 or 1000 <= self.uid < 65534)


class CronEntry(_Model):
    """One active line of a crontab (comments and blank lines dropped)."""

    source: str
    line: str


class Certificate(_Model):
    """An X.509 certificate found under a configured path."""

    path: str
    subject: str
    issuer: str
    not_after: datetime
    days_left: int
    sha256: str = ""


class Inventory(_Model):
    """Everything collected from one host in one run."""

    host: str
    collected_at: datetime
    os_release: dict[str, str] = {}
    kernel: str = ""
    arch: str = ""
    hostname: str = ""
    package_manager: str | None = None
    packages: list[Package] = []
    services: list[Service] = []
    listening: list[ListeningPort] = []
    disks: list[Disk] = []
    users: list[User] = []
    cron: list[CronEntry] = []
    certificates: list[Certificate] = []
    eol_flags: list[str] = []
    unreadable: list[str] = []

    @property
    def os_name(self) -> str:
        """`PRETTY_NAME` of os-release, or what can be made of it."""
        rel = self.os_release
        return rel.get("PRETTY_NAME") or " ".join(
            x for x in (rel.get("NAME", ""), rel.get("VERSION", "")) if x
        )


def inventory_command(cert_paths: Sequence[str] = ()) -> str:
    """The shell command that runs `INVENTORY_SCRIPT` fed on stdin, cert paths quoted for sh.

    Used as-is over SSH (the remote login shell parses it), so every path goes
    through `shlex.quote`: a path with spaces or quotes is one argument, never code.
    """
    return " ".join(["sh", "-s", "--", *(shlex.quote(p) for p in cert_paths)])


# --------------------------------------------------------------------------- parsing


@dataclass
class _Section:
    name: str
    lines: list[str] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)


def _split_sections(output: str) -> tuple[dict[str, _Section], list[str], bool]:
    """Cut the script output into sections; return them, the unreadable notes, and completeness."""
    sections: dict[str, _Section] = {}
    unreadable: list[str] = []
    current: _Section | None = None
    complete = False
    for line in output.splitlines():
        if line.startswith(_MARKER) and line.endswith("=="):
            body = line[len(_MARKER) : -2]
            kind, _, rest = body.partition(" ")
            if kind == "section":
                current = sections.setdefault(rest, _Section(rest))
            elif kind == "unreadable":
                unreadable.append(rest)
            elif kind == "meta" and current is not None:
                key, _, value = rest.partition(" ")
                current.meta[key] = value
                current.lines.append(line)  # keep position: some sections switch encoding
            elif kind in ("file",) and current is not None:
                current.lines.append(line)
            elif kind == "end":
                complete = True
            continue
        if current is not None:
            current.lines.append(line)
    return sections, unreadable, complete


def _files(lines: Iterable[str]) -> list[tuple[str, dict[str, str], list[str]]]:
    """Group `==handover:file PATH==` blocks: (path, meta, data lines without the "|")."""
    out: list[tuple[str, dict[str, str], list[str]]] = []
    for line in lines:
        if line.startswith(_MARKER + "file "):
            out.append((line[len(_MARKER) + 5 : -2], {}, []))
        elif line.startswith(_MARKER + "meta ") and out:
            key, _, value = line[len(_MARKER) + 5 : -2].partition(" ")
            out[-1][1][key] = value
        elif line.startswith("|") and out:
            out[-1][2].append(line[1:])
    return out


def _data(lines: Iterable[str]) -> list[str]:
    """Lines that are neither markers nor empty; a leading "|" (file content) is removed."""
    out = []
    for line in lines:
        if line.startswith(_MARKER) or not line.strip():
            continue
        out.append(line[1:] if line.startswith("|") else line)
    return out


def _parse_os_release(lines: Iterable[str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for line in _data(lines):
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Z0-9_]+", key):
            continue
        try:
            parts = shlex.split(value)
        except ValueError:
            parts = [value.strip().strip("\"'")]
        result[key] = " ".join(parts)
    return result


def _parse_packages(lines: Iterable[str]) -> list[Package]:
    packages: list[Package] = []
    for line in _data(lines):
        parts = line.split("\t")
        if len(parts) != 3:
            continue
        status, name, version = parts
        # dpkg's abbreviated status: second letter is the current state, "i" = installed.
        if len(status) >= 2 and status[1] == "i" and name:
            packages.append(Package(name=name, version=version))
    # Multi-arch hosts list a package once per architecture: one entry is enough here.
    return sorted(set(packages), key=lambda p: (p.name, p.version))


_OPENRC_LINE = re.compile(r"^\s*(\S+)\s+\[\s*([A-Za-z][A-Za-z ]*?)\s*\]")


def _parse_services(section: _Section) -> list[Service]:
    tool = section.meta.get("tool", "")
    services: dict[str, Service] = {}
    for line in _data(section.lines):
        if tool == "systemd":
            parts = line.split(None, 4)
            if len(parts) < 4 or not parts[0].endswith(".service"):
                continue
            name = parts[0].removesuffix(".service")
            services[name] = Service(name=name, state=parts[3])
        elif tool == "openrc":
            match = _OPENRC_LINE.match(line)
            if match:
                services[match[1]] = Service(name=match[1], state=match[2])
        else:
            name, _, state = line.partition("\t")
            if name:
                services[name] = Service(name=name, state=state or "unknown")
    return sorted(services.values(), key=lambda s: s.name)


def _split_host_port(text: str) -> tuple[str, int] | None:
    """`0.0.0.0:22`, `[::]:22`, `*:22`, `:::22`, `127.0.0.53%lo:53` → (address, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host.split("%", 1)[0]
    if host in ("*", ""):
        host = "*"
    return host, int(port)


_SS_PROCESS = re.compile(r'users:\(\("([^"]+)"')


def _decode_proc_address(hex_address: str) -> tuple[str, int]:
    """Decode /proc/net/{tcp,udp}[6] `ADDR:PORT` (address in host byte order words)."""
    addr_hex, port_hex = hex_address.split(":")
    raw = bytes.fromhex(addr_hex)
    # The kernel prints each 32-bit word in host order (little-endian on
    # every architecture handover meets): reverse the bytes of each word.
    swapped = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(swapped)
    return str(address), int(port_hex, 16)


def _parse_listening(section: _Section) -> list[ListeningPort]:
    tool = section.meta.get("tool", "")
    ports: set[ListeningPort] = set()
    if tool == "proc":
        for path, _meta, data in _files(section.lines):
            table = path.rsplit("/", 1)[-1]
            proto = "udp" if table.startswith("udp") else "tcp"
            for line in data:
                parts = line.split()
                if len(parts) < 4 or not parts[0].endswith(":"):
                    continue
                state = parts[3]
                # TCP_LISTEN is 0A; an unconnected bound UDP socket is 07 (TCP_CLOSE).
                if (proto == "tcp" and state != "0A") or (proto == "udp" and state != "07"):
                    continue
                try:
                    address, port = _decode_proc_address(parts[1])
                except ValueError:
                    continue
                ports.add(ListeningPort(proto=proto, address=address, port=port))
    else:
        for line in _data(section.lines):
            parts = line.split()
            if not parts:
                continue
            if tool == "ss":
                # Netid State Recv-Q Send-Q Local:Port Peer:Port [Process]
                if parts[0] not in ("tcp", "udp") or len(parts) < 6:
                    continue
                proto, local, rest = parts[0], parts[4], parts[6:]
                match = _SS_PROCESS.search(" ".join(rest))
                process = match[1] if match else None
            else:
                # Proto Recv-Q Send-Q Local Foreign [State] [PID/Program]
                if not parts[0].startswith(("tcp", "udp")) or len(parts) < 5:
                    continue
                proto, local = parts[0][:3], parts[3]
                last = parts[-1]
                process = last.split("/", 1)[1] if "/" in last and last[0].isdigit() else None
            split = _split_host_port(local)
            if split is None:
                continue
            if proto == "tcp" and tool == "netstat" and "LISTEN" not in parts:
                continue
            ports.add(ListeningPort(proto=proto, address=split[0], port=split[1], process=process))
    return sorted(ports, key=lambda p: (p.proto, p.port, p.address))


def _unescape_mount(text: str) -> str:
    """/proc/mounts escapes space, tab, newline and backslash as octal (\\040...)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), text)


def _parse_disks(section: _Section) -> list[Disk]:
    unit = int(section.meta.get("unit", "1") or 1)
    fstypes: dict[str, str] = {}
    for _path, _meta, data in _files(section.lines):
        for line in data:
            parts = line.split()
            if len(parts) >= 3:
                fstypes[_unescape_mount(parts[1])] = parts[2]
    disks: dict[str, Disk] = {}
    for line in section.lines:
        if line.startswith((_MARKER, "|")) or line.startswith("Filesystem"):
            continue
        parts = line.split()
        if len(parts) < 6:
            continue
        try:
            size, used, avail = (int(x) * unit for x in parts[1:4])
        except ValueError:
            continue
        mount = line.split(None, 5)[5]
        fstype = fstypes.get(mount, "")
        if fstype in _PSEUDO_FS or size == 0:
            continue
        # df's Capacity rounds up; compute ours from used/(used+avail), like df does.
        denominator = used + avail
        percent = math.ceil(used * 1000 / denominator) / 10 if denominator else 0.0
        disks[mount] = Disk(
            mount=mount,
            fstype=fstype or "unknown",
            size_bytes=size,
            used_bytes=used,
            avail_bytes=avail,
            used_percent=percent,
        )
    return sorted(disks.values(), key=lambda d: d.mount)


def _parse_users(lines: Iterable[str]) -> list[User]:
    users: list[User] = []
    for line in _data(lines):
        parts = line.split(":")
        if len(parts) != 7 or line.startswith(("#", "+", "-")):
            continue
        try:
            uid, gid = int(parts[2]), int(parts[3])
        except ValueError:
            continue
        users.append(User(name=parts[0], uid=uid, gid=gid, home=parts[5], shell=parts[6]))
    return users


_CRON_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\s*=")


def _parse_cron(lines: Iterable[str]) -> list[CronEntry]:
    entries: list[CronEntry] = []
    for path, _meta, data in _files(lines):
        for raw in data:
            line = raw.strip()
            if not line or line.startswith("#") or _CRON_ASSIGNMENT.match(line):
                continue
            entries.append(CronEntry(source=path, line=line))
    return entries


_PEM_BLOCK = re.compile(
    r"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.DOTALL
)


def _certificate(path: str, cert: x509.Certificate, now: datetime) -> Certificate:
    not_after = cert.not_valid_after_utc
    return Certificate(
        path=path,
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_after=not_after,
        days_left=math.floor((not_after - now).total_seconds() / 86400),
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
    )


def _parse_certificates(lines: Iterable[str], now: datetime) -> tuple[list[Certificate], list[str]]:
    certificates: list[Certificate] = []
    problems: list[str] = []
    seen: set[str] = set()
    for path, meta, data in _files(lines):
        encoding = meta.get("encoding", "pem")
        ders: list[bytes] = []
        try:
            if encoding == "pem":
                for block in _PEM_BLOCK.findall("\n".join(data)):
                    ders.append(base64.b64decode("".join(block.split()), validate=True))
            elif encoding == "der":
                ders.append(base64.b64decode("".join(data), validate=True))
            elif encoding == "hex":
                ders.append(bytes.fromhex("".join(data)))
        except (ValueError, binascii.Error):
            problems.append(f"certificates: {path}: malformed {encoding.upper()} data")
            continue
        for der in ders:
            try:
                with warnings.catch_warnings():
                    # Old CA certificates with a non-positive serial still parse; say nothing.
                    warnings.simplefilter("ignore")
                    cert = x509.load_der_x509_certificate(der)
                record = _certificate(path, cert, now)
            except ValueError:
                problems.append(f"certificates: {path}: not an X.509 certificate")
                continue
            # The same certificate reached by two paths (symlinks, chain files) counts once.
            if record.sha256 not in seen:
                seen.add(record.sha256)
                certificates.append(record)
    return certificates, problems


# --------------------------------------------------------------------------- end of life


@dataclass(frozen=True)
class _OsEol:
    distro: str
    label: str
    releases: dict[str, date]  # version (major or major.minor) -> end of (LTS) support


_OS_EOL: tuple[_OsEol, ...] = (
    _OsEol(
        "debian",
        "Debian",
        {
            "8": date(2020, 6, 30),
            "9": date(2022, 6, 30),
            "10": date(2024, 6, 30),
            "11": date(2026, 8, 31),
            "12": date(2028, 6, 30),
            "13": date(2030, 6, 30),
        },
    ),
    _OsEol(
        "ubuntu",
        "Ubuntu",
        {
            "14.04": date(2019, 4, 30),
            "16.04": date(2021, 4, 30),
            "18.04": date(2023, 5, 31),
            "20.04": date(2025, 5, 31),
            "22.04": date(2027, 6, 1),
            "24.04": date(2029, 5, 31),
        },
    ),
    _OsEol(
        "centos",
        "CentOS",
        {"6": date(2020, 11, 30), "7": date(2024, 6, 30), "8": date(2021, 12, 31)},
    ),
    _OsEol(
        "rhel",
        "RHEL",
        {
            "6": date(2020, 11, 30),
            "7": date(2024, 6, 30),
            "8": date(2029, 5, 31),
            "9": date(2032, 5, 31),
        },
    ),
    _OsEol(
        "alpine",
        "Alpine",
        {
            "3.15": date(2023, 11, 1),
            "3.16": date(2024, 5, 23),
            "3.17": date(2024, 11, 22),
            "3.18": date(2025, 5, 9),
            "3.19": date(2025, 11, 1),
            "3.20": date(2026, 4, 1),
            "3.21": date(2026, 11, 1),
            "3.22": date(2027, 5, 1),
        },
    ),
)


def _version_key(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text))


def _os_eol_flag(os_release: dict[str, str], today: date) -> str | None:
    distro = os_release.get("ID", "").lower()
    version_id = os_release.get("VERSION_ID", "")
    if not version_id:
        return None
    for table in _OS_EOL:
        if table.distro != distro:
            continue
        depth = len(next(iter(table.releases)).split("."))
        version = ".".join(version_id.split(".")[:depth])
        end = table.releases.get(version)
        oldest = min(table.releases, key=_version_key)
        name = os_release.get("PRETTY_NAME") or f"{table.label} {version_id}"
        if end is not None and end <= today:
            return f"os: {name}: end of life since {end.isoformat()}"
        if end is None and _version_key(version) < _version_key(oldest):
            return f"os: {name}: end of life (older than {table.label} {oldest})"
    return None


@dataclass(frozen=True)
class _PackageEol:
    label: str
    name: re.Pattern[str]
    version: re.Pattern[str] | None = None


_PACKAGE_EOL: tuple[_PackageEol, ...] = (
    _PackageEol("PHP 5 (end of life 2018-12-31)", re.compile(r"^php5(\.\d+)?($|-)")),
    _PackageEol("PHP 7 (end of life 2022-11-28)", re.compile(r"^php7\.\d($|-)")),
    _PackageEol("PHP 8.0 (end of life 2023-11-26)", re.compile(r"^php8\.0($|-)")),
    _PackageEol(
        "PHP 5/7 (end of life)", re.compile(r"^php(-cli|-fpm|-common)?$"), re.compile(r"^[57]\.")
    ),
    _PackageEol("Python 2 (end of life 2020-01-01)", re.compile(r"^python2(\.\d+)?(-minimal)?$")),
    _PackageEol("OpenSSL 1.0/1.1 (end of life 2023-09-11)", re.compile(r"^libssl1\.[01](\.\d+)?$")),
    _PackageEol(
        "OpenSSL 1.0/1.1 (end of life 2023-09-11)",
        re.compile(r"^(openssl|openssl-libs)$"),
        re.compile(r"^(\d+:)?1\.[01]\."),
    ),
    _PackageEol("MySQL 5.x (end of life 2023-10-31)", re.compile(r"^mysql-server-5\.\d+$")),
    _PackageEol(
        "MySQL 5.x (end of life 2023-10-31)",
        re.compile(r"^(mysql-server|mysql-community-server|mysql)$"),
        re.compile(r"^(\d+:)?5\."),
    ),
    _PackageEol("PostgreSQL ≤ 12 (end of life)", re.compile(r"^postgresql-(9\.\d|10|11|12)$")),
    _PackageEol(
        "Node.js < 18 (end of life)", re.compile(r"^nodejs$"), re.compile(r"^(\d+:)?(\d|1[0-7])\.")
    ),
)

_MAX_NAMES_PER_FLAG = 5


def eol_flags(os_release: dict[str, str], packages: Sequence[Package], today: date) -> list[str]:
    """End-of-life findings: the OS release, then one line per family of EOL packages."""
    flags: list[str] = []
    os_flag = _os_eol_flag(os_release, today)
    if os_flag:
        flags.append(os_flag)
    hits: dict[str, list[str]] = {}
    for package in packages:
        for rule in _PACKAGE_EOL:
            if rule.name.search(package.name) and (
                rule.version is None or rule.version.search(package.version)
            ):
                hits.setdefault(rule.label, []).append(f"{package.name} {package.version}")
                break
    for label, names in hits.items():
        shown = ", ".join(names[:_MAX_NAMES_PER_FLAG])
        more = len(names) - _MAX_NAMES_PER_FLAG
        flags.append(f"package: {label}: {shown}" + (f" (+{more} more)" if more > 0 else ""))
    return flags


# --------------------------------------------------------------------------- entry point


def parse_inventory(host: str, output: str, now: datetime | None = None) -> Inventory:
    """Build the Inventory of `host` from the output of INVENTORY_SCRIPT.

    Never raises on odd output: a section that is missing, empty or that the
    script declared unreadable is recorded in `unreadable` ("fact: why"), and
    output cut short (no end marker) is recorded as such.
    """
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    sections, unreadable, complete = _split_sections(output)
    if not complete:
        unreadable.append("inventory: output ended before the end marker (truncated run)")

    def section(name: str) -> _Section:
        found = sections.get(name)
        if found is None:
            if complete or not sections:
                unreadable.append(f"{name}: section missing from the output")
            return _Section(name)
        return found

    os_release = _parse_os_release(section("os_release").lines)
    system = dict(line.partition("=")[::2] for line in _data(section("system").lines))
    packages = _parse_packages(section("packages").lines)
    services = _parse_services(section("services"))
    listening = _parse_listening(section("listening"))
    disks = _parse_disks(section("disks"))
    users = _parse_users(section("users").lines)
    cron = _parse_cron(section("cron").lines)
    certificates, cert_problems = _parse_certificates(section("certificates").lines, now)
    unreadable.extend(cert_problems)
    package_section = sections.get("packages")
    return Inventory(
        host=host,
        collected_at=now,
        os_release=os_release,
        kernel=system.get("kernel", ""),
        arch=system.get("arch", ""),
        hostname=system.get("hostname", ""),
        package_manager=package_section.meta.get("manager") if package_section else None,
        packages=packages,
        services=services,
        listening=listening,
        disks=disks,
        users=users,
        cron=cron,
        certificates=certificates,
        eol_flags=eol_flags(os_release, packages, now.date()),
        unreadable=list(dict.fromkeys(unreadable)),
    )


# Facts that only a command can give: what an account limited to file transfer cannot read.
_COMMAND_FACTS = ("packages", "services", "listening", "disks", "cron", "certificates")


def inventory_from_files(
    host: str,
    read_file: Callable[[str], bytes],
    why: str,
    now: datetime | None = None,
) -> Inventory:
    """The inventory an account without a shell allows (e.g. SFTP-only): files only.

    `read_file(path)` reads a small file on the host and raises OSError or a
    HandoverError when it cannot. OS release, hostname, kernel and users come
    from files; every fact that needs a command is recorded in `unreadable`
    as "fact: WHY", so the report shows the gap instead of an empty list.
    """
    out: list[str] = []

    def dump(path: str) -> bool:
        try:
            text = read_file(path).decode("utf-8", "replace")
        except Exception:  # unreadable is a finding, not an error
            return False
        out.extend("|" + line for line in text.splitlines())
        return True

    def first_line(path: str) -> str:
        try:
            return read_file(path).decode("utf-8", "replace").strip().splitlines()[0]
        except Exception:
            return ""

    out.append(f"{_MARKER}section os_release==")
    if not dump("/etc/os-release") and not dump("/usr/lib/os-release"):
        out.append(f"{_MARKER}unreadable os_release: no readable os-release file==")
    out.append(f"{_MARKER}section system==")
    out.append(f"kernel={first_line('/proc/sys/kernel/osrelease')}")
    out.append(f"hostname={first_line('/etc/hostname')}")
    out.append(f"{_MARKER}section users==")
    if not dump("/etc/passwd"):
        out.append(f"{_MARKER}unreadable users: /etc/passwd: not readable==")
    for fact in _COMMAND_FACTS:
        out.append(f"{_MARKER}section {fact}==")
        out.append(f"{_MARKER}unreadable {fact}: {why}==")
    out.append(f"{_MARKER}end==")
    return parse_inventory(host, "\n".join(out) + "\n", now)
