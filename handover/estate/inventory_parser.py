"""Parsing the inventory script's output into an Inventory.

The script (`inventory.sh`) stays dumb on purpose: on hosts we do not control
it only prints marked sections and says which facts it could not read.
Everything clever happens here, in Python, where it is testable: dpkg/rpm/apk
listings, systemd/OpenRC/init.d states, ss/netstat and /proc/net hex
decoding, df and /proc/mounts, passwd, crontabs, and certificates parsed with
`cryptography` (openssl may be missing on the host). The parser never raises
on odd output: a gap becomes an `unreadable` note.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re
import shlex
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from handover.clock import as_utc
from handover.estate.eol import eol_flags
from handover.estate.inventory import (
    Certificate,
    CronEntry,
    Disk,
    Inventory,
    ListeningPort,
    Package,
    Service,
    User,
)

__all__ = ["MARKER", "parse_inventory"]

MARKER = "==handover:"
"""Every marker line of the script's output starts with this (file lines start with "|")."""

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
        if line.startswith(MARKER) and line.endswith("=="):
            body = line[len(MARKER) : -2]
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
        if line.startswith(MARKER + "file "):
            out.append((line[len(MARKER) + 5 : -2], {}, []))
        elif line.startswith(MARKER + "meta ") and out:
            key, _, value = line[len(MARKER) + 5 : -2].partition(" ")
            out[-1][1][key] = value
        elif line.startswith("|") and out:
            out[-1][2].append(line[1:])
    return out


def _data(lines: Iterable[str]) -> list[str]:
    """Lines that are neither markers nor empty; a leading "|" (file content) is removed."""
    out = []
    for line in lines:
        if line.startswith(MARKER) or not line.strip():
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


def _ports_from_proc(section: _Section) -> set[ListeningPort]:
    """Listening sockets from /proc/net/{tcp,udp}[6] tables (no process names there)."""
    ports: set[ListeningPort] = set()
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
    return ports


def _port_from_tool_line(tool: str, parts: list[str]) -> ListeningPort | None:
    """One line of `ss -tulpn` or `netstat -tulpn` split on whitespace, or None to skip it."""
    if tool == "ss":
        # Netid State Recv-Q Send-Q Local:Port Peer:Port [Process]
        if parts[0] not in ("tcp", "udp") or len(parts) < 6:
            return None
        proto, local, rest = parts[0], parts[4], parts[6:]
        match = _SS_PROCESS.search(" ".join(rest))
        process = match[1] if match else None
    else:
        # Proto Recv-Q Send-Q Local Foreign [State] [PID/Program]
        if not parts[0].startswith(("tcp", "udp")) or len(parts) < 5:
            return None
        proto, local = parts[0][:3], parts[3]
        last = parts[-1]
        process = last.split("/", 1)[1] if "/" in last and last[0].isdigit() else None
    split = _split_host_port(local)
    if split is None:
        return None
    if proto == "tcp" and tool == "netstat" and "LISTEN" not in parts:
        return None
    return ListeningPort(proto=proto, address=split[0], port=split[1], process=process)


def _parse_listening(section: _Section) -> list[ListeningPort]:
    tool = section.meta.get("tool", "")
    if tool == "proc":
        ports = _ports_from_proc(section)
    else:
        found = (_port_from_tool_line(tool, line.split()) for line in _data(section.lines))
        ports = {port for port in found if port is not None}
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
        if line.startswith((MARKER, "|")) or line.startswith("Filesystem"):
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


# --------------------------------------------------------------------------- entry point


def parse_inventory(host: str, output: str, now: datetime | None = None) -> Inventory:
    """Build the Inventory of `host` from the output of INVENTORY_SCRIPT.

    Never raises on odd output: a section that is missing, empty or that the
    script declared unreadable is recorded in `unreadable` ("fact: why"), and
    output cut short (no end marker) is recorded as such.
    """
    now = as_utc(now or datetime.now(UTC))
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
