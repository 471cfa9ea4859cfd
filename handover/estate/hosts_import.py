"""Hosts from an existing inventory into a playbook's perimeter: Ansible INI/YAML, NetBox/GLPI CSV.

A provider taking over an estate already has a list of its machines; typing
it again into YAML is where typos come from. This module reads the list and
writes the playbook's `perimeter.hosts` entries, as text inserted into the
playbook, so the rest of the file (comments included) is left as it was.
Pure functions: the command reads the files and writes the result.

Formats:

- Ansible INI: `[group]` sections of `name key=value...` lines, hosts before
  any section ungrouped, `[group:children]` and `[group:vars]` understood
  (children give their groups as tags; vars are ignored), numeric ranges
  such as `web[01:03]` expanded.
- Ansible YAML: groups with `hosts:` (name to variables) and `children:`.
- CSV (NetBox or GLPI export): a header row; the name column is one of
  `name`, `hostname`, `nom`, `device`; the address column one of `address`,
  `primary_ip`, `primary_ipv4`, `primary_ipv6`, `ip`, `ip_address`,
  `adresse_ip` (case, spaces and dashes ignored; a `/prefix` is dropped);
  optional `port`, `user`, `tags` (comma or space separated). A row with no
  address uses its name as the address.

From Ansible: `ansible_host` (else the inventory name) is the address,
`ansible_port` the port, `ansible_user` the login, the groups the tags.
Names become slugs (lowercase, other characters replaced by `-`), since a
host name names files and references.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import PurePath
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from handover.contract.init_template import yaml_string as _q
from handover.errors import UsageError

Format = Literal["auto", "ini", "yaml", "csv"]
FORMATS: tuple[str, ...] = ("auto", "ini", "yaml", "csv")

_NAME_COLUMNS = ("name", "hostname", "nom", "device")
_ADDRESS_COLUMNS = (
    "address",
    "primary_ip",
    "primary_ipv4",
    "primary_ipv6",
    "ip",
    "ip_address",
    "adresse_ip",
)
# A DNS name, an IPv4 or an IPv6 address: letters, digits and . - _ : % (zone) only.
_ADDRESS_RE = re.compile(r"^[A-Za-z0-9._:%-]{1,253}$")
_RANGE_RE = re.compile(r"\[(\d+):(\d+)\]")
_SKIP_GROUPS = {"all", "ungrouped"}


class ImportedHost(BaseModel):
    """One host read from an inventory, as it will be written into the playbook."""

    model_config = ConfigDict(frozen=True)

    name: str
    address: str
    port: int = 22
    user: str | None = None
    tags: list[str] = Field(default_factory=list)
    source: str = Field(description="Where it was read: file:line.")
    renamed_from: str | None = None


def slugify(name: str) -> str:
    """A host slug from an inventory name: lowercase, [a-z0-9-] only, at most 63 characters."""
    slug = re.sub(r"[^a-z0-9-]+", "-", name.strip().lower()).strip("-")
    return slug[:63].rstrip("-")


def _host(
    name: str, address: str | None, port: Any, user: Any, tags: list[str], source: str
) -> ImportedHost:
    slug = slugify(name)
    if not slug:
        raise UsageError(f"{source}: host name {name!r} has no letter or digit")
    try:
        number = int(port) if port not in (None, "") else 22
    except (TypeError, ValueError):
        raise UsageError(f"{source}: {name}: port {port!r} is not a number") from None
    if not 1 <= number <= 65535:
        raise UsageError(f"{source}: {name}: port {number} is not between 1 and 65535")
    target = str(address or name).strip()
    if not _ADDRESS_RE.match(target):
        raise UsageError(
            f"{source}: {name}: address {target[:80]!r} is not a host name or IP address"
        )
    return ImportedHost(
        name=slug,
        address=target,
        port=number,
        user=str(user).strip() if user not in (None, "") else None,
        tags=sorted({slugify(t) for t in tags if slugify(t)} - _SKIP_GROUPS),
        source=source,
        renamed_from=name if slug != name else None,
    )


# --------------------------------------------------------------------------- Ansible INI


def _expand(pattern: str) -> list[str]:
    """`web[01:03]` -> web01, web02, web03 (zero padding kept); other names as they are."""
    match = _RANGE_RE.search(pattern)
    if match is None:
        return [pattern]
    low, high = match.group(1), match.group(2)
    width = len(low) if low.startswith("0") else 0
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return [
        name
        for n in range(int(low), int(high) + 1)
        for name in _expand(f"{head}{str(n).zfill(width)}{tail}")
    ]


def parse_ansible_ini(text: str, source: str) -> list[ImportedHost]:
    """The hosts of an Ansible INI inventory (see the module for what is read)."""
    found: dict[str, tuple[dict[str, str], set[str], str]] = {}
    children: dict[str, set[str]] = {}
    section, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        where = f"{source}:{number}"
        if line.startswith("["):
            if not line.endswith("]"):
                raise UsageError(f"{where}: unclosed section header {line!r}")
            section, _, kind = line[1:-1].strip().partition(":")
            kind = kind or "hosts"
            continue
        if kind == "vars":
            continue
        if kind == "children":
            children.setdefault(section, set()).add(line.split()[0])
            continue
        try:
            fields = line.split("#", 1)[0].split() if " #" in line else line.split()
            variables = dict(_variable(token, where) for token in fields[1:])
        except ValueError as exc:
            raise UsageError(f"{where}: {exc}") from None
        for name in _expand(fields[0]):
            known = found.setdefault(name, ({}, set(), where))
            known[0].update(variables)
            known[1].add(section)
    return [
        _host(
            name,
            variables.get("ansible_host"),
            variables.get("ansible_port"),
            variables.get("ansible_user"),
            sorted(_with_parents(groups, children)),
            where,
        )
        for name, (variables, groups, where) in found.items()
    ]


def _variable(token: str, where: str) -> tuple[str, str]:
    key, sep, value = token.partition("=")
    if not sep:
        raise ValueError(f"expected key=value after the host name, got {token!r}")
    return key, value.strip("'\"")


def _with_parents(groups: set[str], children: dict[str, set[str]]) -> set[str]:
    """The host's groups and every group that has one of them as a child."""
    result = set(groups)
    changed = True
    while changed:
        changed = False
        for parent, kids in children.items():
            if parent not in result and kids & result:
                result.add(parent)
                changed = True
    return result


# --------------------------------------------------------------------------- Ansible YAML


def parse_ansible_yaml(text: str, source: str) -> list[ImportedHost]:
    """The hosts of an Ansible YAML inventory: groups of `hosts:` and `children:`."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{source}{line}: not YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{source}: expected a mapping of groups (all:, webservers:, ...)")
    found: dict[str, tuple[dict[str, Any], set[str]]] = {}
    for group, body in data.items():
        _walk_group(str(group), body, [], found, source)
    return [
        _host(
            name,
            variables.get("ansible_host"),
            variables.get("ansible_port"),
            variables.get("ansible_user"),
            sorted(groups),
            f"{source}: host {name}",
        )
        for name, (variables, groups) in found.items()
    ]


def _walk_group(
    group: str,
    body: Any,
    parents: list[str],
    found: dict[str, tuple[dict[str, Any], set[str]]],
    source: str,
) -> None:
    if body is None:
        return
    if not isinstance(body, dict):
        raise UsageError(f"{source}: group {group!r}: expected a mapping (hosts:, children:)")
    lineage = [*parents, group]
    hosts = body.get("hosts") or {}
    if not isinstance(hosts, dict):
        raise UsageError(f"{source}: group {group!r}: hosts must be a mapping of names")
    for pattern, variables in hosts.items():
        if variables is not None and not isinstance(variables, dict):
            raise UsageError(f"{source}: host {pattern!r}: variables must be a mapping")
        for name in _expand(str(pattern)):
            known = found.setdefault(name, ({}, set()))
            known[0].update(variables or {})
            known[1].update(lineage)
    kids = body.get("children") or {}
    if not isinstance(kids, dict):
        raise UsageError(f"{source}: group {group!r}: children must be a mapping of groups")
    for child, child_body in kids.items():
        _walk_group(str(child), child_body, lineage, found, source)


# --------------------------------------------------------------------------- CSV


def _column(header: list[str], wanted: tuple[str, ...]) -> int | None:
    normalized = [re.sub(r"[\s-]+", "_", h.strip().lower()).strip("\ufeff") for h in header]
    for name in wanted:
        if name in normalized:
            return normalized.index(name)
    return None


def parse_csv(text: str, source: str) -> list[ImportedHost]:
    """The hosts of a NetBox or GLPI CSV export (columns: see the module)."""
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), dialect))
    except csv.Error as exc:
        raise UsageError(f"{source}: not a CSV file ({exc})") from None
    if not rows:
        raise UsageError(f"{source}: empty CSV file")
    header = rows[0]
    name_at = _column(header, _NAME_COLUMNS)
    if name_at is None:
        raise UsageError(
            f"{source}:1: no name column (one of {', '.join(_NAME_COLUMNS)}); "
            f"columns are: {', '.join(header)}"
        )
    address_at = _column(header, _ADDRESS_COLUMNS)
    port_at, user_at, tags_at = (_column(header, (c,)) for c in ("port", "user", "tags"))

    def cell(row: list[str], at: int | None) -> str:
        return row[at].strip() if at is not None and at < len(row) else ""

    hosts = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        name = cell(row, name_at)
        if not name:
            raise UsageError(f"{source}:{number}: no name")
        address = cell(row, address_at).split("/")[0] or None
        tags = re.split(r"[,\s]+", cell(row, tags_at)) if cell(row, tags_at) else []
        hosts.append(
            _host(name, address, cell(row, port_at), cell(row, user_at), tags, f"{source}:{number}")
        )
    return hosts


# --------------------------------------------------------------------------- any format


def guess_format(filename: str, text: str) -> Format:
    """csv by extension, yaml by extension or a leading mapping, else Ansible INI."""
    suffix = PurePath(filename).suffix.lower()
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    first = next((ln.strip() for ln in text.splitlines() if ln.strip() and ln[0] != "#"), "")
    if first.endswith(":") and not first.startswith("["):
        return "yaml"
    return "ini"


def parse_inventory(text: str, source: str, fmt: Format = "auto") -> list[ImportedHost]:
    """The hosts of an inventory file in `fmt` (auto: `guess_format`); UsageError when unusable.

    Raises UsageError too when two entries of the file give the same host
    name (after slugging), naming both.
    """
    chosen = guess_format(source, text) if fmt == "auto" else fmt
    parsers = {"ini": parse_ansible_ini, "yaml": parse_ansible_yaml, "csv": parse_csv}
    hosts = parsers[chosen](text, source)
    seen: dict[str, ImportedHost] = {}
    for host in hosts:
        if host.name in seen:
            raise UsageError(
                f"{host.source}: host {host.name!r} given twice (also {seen[host.name].source})"
            )
        seen[host.name] = host
    return hosts


def duplicate_problems(
    hosts: list[ImportedHost], existing: list[tuple[str, str | None, int]]
) -> list[str]:
    """Imported hosts whose name, or address and port, the playbook already has.

    `existing`: (name, address, port) of the playbook's hosts, in order.
    """
    problems = []
    by_name = {name: i for i, (name, _a, _p) in enumerate(existing)}
    by_address = {(a, p): i for i, (_n, a, p) in enumerate(existing) if a}
    for host in hosts:
        if host.name in by_name:
            problems.append(
                f"{host.source}: host {host.name!r} is already in the playbook "
                f"(perimeter.hosts[{by_name[host.name]}])"
            )
        elif (host.address, host.port) in by_address:
            index = by_address[(host.address, host.port)]
            problems.append(
                f"{host.source}: {host.address}:{host.port} is already host "
                f"{existing[index][0]!r} (perimeter.hosts[{index}])"
            )
    return problems


# --------------------------------------------------------------------------- into the playbook


def _plain_or_quoted(name: str) -> str:
    """A slug as it reads best, quoted when YAML would read it as something else (on, no, 0123)."""
    return name if yaml.safe_load(name) == name else _q(name)


def host_entry(host: ImportedHost, indent: int) -> list[str]:
    """The block YAML of one host, its `-` at column `indent`."""
    pad = " " * indent
    lines = [
        f"{pad}- name: {_plain_or_quoted(host.name)}",
        f"{pad}  transport: ssh",
        f"{pad}  address: {_q(host.address)}",
    ]
    if host.port != 22:
        lines.append(f"{pad}  port: {host.port}")
    if host.user:
        lines.append(f"{pad}  user: {_q(host.user)}")
    if host.tags:
        lines.append(f"{pad}  tags: [{', '.join(host.tags)}]")
    return lines


def _key(mapping: yaml.MappingNode, name: str) -> tuple[yaml.Node, yaml.Node] | None:
    for key, value in mapping.value:
        if isinstance(key, yaml.ScalarNode) and key.value == name:
            return key, value
    return None


def _last_end(node: yaml.Node) -> int:
    """Offset just after the last character of `node`'s own text (not the comments after it)."""
    if isinstance(node, yaml.MappingNode) and not node.flow_style and node.value:
        return _last_end(node.value[-1][1])
    if isinstance(node, yaml.SequenceNode) and not node.flow_style and node.value:
        return _last_end(node.value[-1])
    return int(node.end_mark.index)


def _line_end(text: str, offset: int) -> int:
    newline = text.find("\n", offset)
    return len(text) if newline < 0 else newline + 1


def _after_own_comments(text: str, at: int, column: int) -> int:
    """Past the comment lines indented deeper than `column`: they belong to the last entry."""
    while at < len(text):
        end = _line_end(text, at)
        line = text[at:end]
        indent = len(line) - len(line.lstrip(" "))
        if not line.strip().startswith("#") or indent <= column:
            return at
        at = end
    return at


def insert_hosts(text: str, hosts: list[ImportedHost]) -> str:
    """The playbook `text` with `hosts` appended to `perimeter.hosts`, everything else kept.

    Handles a block list of hosts (entries appended after the last one), an
    empty `hosts: []` (replaced by a block list; a comment on that line goes)
    and a perimeter without `hosts` (the key added first). A perimeter or a
    non-empty host list written in flow style (`{...}`, `[...]`) is refused:
    there is no place to insert without rewriting it.
    """
    if not hosts:
        return text
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode):
        raise UsageError("the playbook is not a mapping of sections")
    found = _key(root, "perimeter")
    if found is None or not isinstance(found[1], yaml.MappingNode) or found[1].flow_style:
        raise UsageError("perimeter: expected a block mapping (`perimeter:` then indented keys)")
    perimeter = found[1]
    hosts_entry = _key(perimeter, "hosts")
    if hosts_entry is None:
        column = perimeter.start_mark.column
        at = int(perimeter.start_mark.index) - column
        block = [" " * column + "hosts:", *_entries(hosts, column + 2)]
        return text[:at] + "\n".join(block) + "\n" + text[at:]
    key, value = hosts_entry
    if not isinstance(value, yaml.SequenceNode):
        raise UsageError("perimeter.hosts: expected a list")
    if value.flow_style or not value.value:
        if value.value:
            raise UsageError(
                "perimeter.hosts is written in flow style ([...]): write it as a block list "
                "(one `- name: ...` per host) to import into it"
            )
        column = key.start_mark.column
        end = _line_end(text, int(value.end_mark.index))
        block = _entries(hosts, column + 2)
        return text[: int(key.end_mark.index)] + ":\n" + "\n".join(block) + "\n" + text[end:]
    column = value.start_mark.column
    at = _after_own_comments(text, _line_end(text, _last_end(value)), column)
    return text[:at] + "\n".join(_entries(hosts, column)) + "\n" + text[at:]


def _entries(hosts: list[ImportedHost], indent: int) -> list[str]:
    return [line for host in hosts for line in host_entry(host, indent)]


def imported_rows(hosts: list[ImportedHost]) -> Iterator[tuple[str, ...]]:
    """(name, address, port, user, tags, source) per host, for a dry-run table."""
    for host in hosts:
        name = host.name + (f" (from {host.renamed_from})" if host.renamed_from else "")
        yield (
            name,
            host.address,
            str(host.port),
            host.user or "",
            ", ".join(host.tags),
            host.source,
        )
