"""Hosts from Ansible (INI, YAML) and NetBox/GLPI CSV inventories into a playbook.

Parsing and insertion are pure (`handover.estate.hosts_import`); the command
goes through the real typer app on copies of the example playbooks. Sample
inventories: tests/data/inventories/.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import handover.cli.hosts_cmd  # noqa: F401  (registers hosts import)
from handover.cli import app
from handover.contract.loader import load_playbook
from handover.errors import UsageError
from handover.estate.hosts_import import (
    ImportedHost,
    insert_hosts,
    parse_inventory,
    slugify,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATA = PROJECT_ROOT / "tests" / "data" / "inventories"
ACME = PROJECT_ROOT / "playbooks" / "examples" / "acme.yaml"
runner = CliRunner()


def table(hosts: list[ImportedHost]) -> dict[str, tuple[str, int, str | None, list[str]]]:
    return {h.name: (h.address, h.port, h.user, h.tags) for h in hosts}


def test_ansible_ini_hosts_groups_children_ranges_and_variables() -> None:
    path = DATA / "hosts.ini"
    hosts = parse_inventory(path.read_text(encoding="utf-8"), str(path))
    assert table(hosts) == {
        "bastion-example-net": ("bastion.example.net", 22, "admin", []),
        "web01": ("web01", 22, "ops", ["prod", "web"]),
        "web02": ("web02", 22, "ops", ["prod", "web"]),
        "www-legacy": ("192.0.2.30", 2222, None, ["prod", "web"]),
        "db01": ("192.0.2.20", 2200, "postgres", ["db", "prod"]),
    }
    legacy = next(h for h in hosts if h.name == "www-legacy")
    assert legacy.renamed_from == "WWW-Legacy" and legacy.source == f"{path}:6"


def test_ansible_yaml_hosts_and_nested_groups() -> None:
    path = DATA / "hosts.yaml"
    hosts = parse_inventory(path.read_text(encoding="utf-8"), str(path))
    assert table(hosts) == {
        "mail01": ("192.0.2.40", 22, None, []),
        "web01": ("192.0.2.10", 22, "ops", ["web"]),
        "web02": ("192.0.2.11", 2222, None, ["web"]),
        "db01": ("192.0.2.20", 22, None, ["db"]),
    }


def test_netbox_csv_drops_the_prefix_and_reads_tags() -> None:
    path = DATA / "netbox.csv"
    hosts = parse_inventory(path.read_text(encoding="utf-8"), str(path))
    assert table(hosts) == {
        "fw01": ("192.0.2.1", 22, None, ["edge", "firewall"]),
        "nas01": ("192.0.2.50", 22, None, []),
    }


def test_glpi_csv_semicolons_bom_and_french_columns() -> None:
    path = DATA / "glpi.csv"
    hosts = parse_inventory(path.read_text(encoding="utf-8"), str(path))
    assert table(hosts) == {
        "srv-ad01": ("192.0.2.60", 22, None, []),
        "srv-files": ("192.0.2.61", 2022, None, []),
    }


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("x.csv", "Site,Status\nNantes,Active\n", "x.csv:1: no name column (one of name"),
        ("x.csv", "name,ip,port\nweb,192.0.2.1,http\n", "x.csv:2: web: port 'http' is not"),
        ("x.ini", "[web]\nweb01 ansible_port\n", "x.ini:2: expected key=value"),
        ("x.ini", "[web\nweb01\n", "x.ini:1: unclosed section header"),
        ("x.ini", "web01 ansible_host=a;reboot\n", "address 'a;reboot' is not a host name"),
        ("x.csv", 'name,ip\r\nweb,"192.0.2.1\x7f"\r\n', "x.csv:2: web: address"),
        ("x.ini", "Web01\nweb01\n", "x.ini:2: host 'web01' given twice (also x.ini:1)"),
        ("x.yaml", "all:\n  hosts: [a, b]\n", "hosts must be a mapping of names"),
        ("x.yaml", "all: {hosts: {a: 1}}\n", "host 'a': variables must be a mapping"),
        ("x.yaml", "all:\n  hosts:\n    a: [\n", "x.yaml:4: not YAML"),
    ],
)
def test_unusable_inventories_are_one_located_line(name: str, text: str, words: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_inventory(text, name)
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


def imported(*names: str) -> list[ImportedHost]:
    return [ImportedHost(name=n, address=f"{n}.example", source="t") for n in names]


def test_insert_keeps_every_other_line_and_comment_of_the_playbook() -> None:
    text = ACME.read_text(encoding="utf-8")
    updated = insert_hosts(text, imported("mail01", "fw01"))
    block = "\n".join(
        [
            "    - name: mail01",
            "      transport: ssh",
            '      address: "mail01.example"',
            "    - name: fw01",
            "      transport: ssh",
            '      address: "fw01.example"',
        ]
    )
    assert updated.count(block) == 1
    assert updated.replace(block + "\n", "") == text
    names = [h["name"] for h in yaml.safe_load(updated)["perimeter"]["hosts"]]
    assert names == ["web01", "db01", "files01", "mail01", "fw01"]


@pytest.mark.parametrize(
    ("perimeter", "expected"),
    [
        ("perimeter:\n  hosts: []   # none yet\n  datasets: []\n", ["new"]),
        ("perimeter:\n  datasets: []\n", ["new"]),
        ("perimeter:\n  hosts:\n  - {name: a, transport: local}\n    # about a\n\nx: 1\n", None),
    ],
)
def test_insert_into_empty_missing_and_flow_item_host_lists(
    perimeter: str, expected: list[str] | None
) -> None:
    updated = insert_hosts(perimeter, imported("new"))
    hosts = yaml.safe_load(updated)["perimeter"]["hosts"]
    assert [h["name"] for h in hosts] == (expected or ["a", "new"])
    assert yaml.safe_load(updated).get("x") == (None if expected else 1)
    if expected is None:  # the comment of the last entry stays with it
        assert updated.index("# about a") < updated.index("name: new")


def test_a_flow_style_host_list_is_refused() -> None:
    with pytest.raises(UsageError, match=r"flow style \(\[\.\.\.\]\)"):
        insert_hosts("perimeter:\n  hosts: [{name: a, transport: local}]\n", imported("b"))


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=40))
def test_slugify_gives_a_slug_or_nothing(name: str) -> None:
    slug = slugify(name)
    assert slug == "" or (
        len(slug) <= 63
        and slug[0] != "-"
        and set(slug) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
    )


def playbook_copy(tmp_path: Path) -> Path:
    path = tmp_path / "acme.yaml"
    shutil.copy(ACME, path)
    return path


def test_command_adds_hosts_and_the_playbook_still_loads(tmp_path: Path) -> None:
    path = playbook_copy(tmp_path)
    result = runner.invoke(
        app, ["hosts", "import", str(DATA / "hosts.yaml"), "--into", str(path)], input=""
    )
    assert result.exit_code == 2  # web01 and db01 are acme's own
    assert "host 'web01' is already in the playbook (perimeter.hosts[0])" in result.stderr
    assert "host 'db01' is already in the playbook (perimeter.hosts[1])" in result.stderr
    assert f"nothing written to {path}" in result.stderr
    assert path.read_bytes() == ACME.read_bytes()
    result = runner.invoke(app, ["hosts", "import", str(DATA / "netbox.csv"), "--into", str(path)])
    assert result.exit_code == 0, result.stderr
    assert "2 host(s) added" in result.stdout
    hosts = load_playbook(path).hosts
    assert [h.name for h in hosts] == ["web01", "db01", "files01", "fw01", "nas01"]
    assert hosts[3].tags == ["edge", "firewall"]


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    path = playbook_copy(tmp_path)
    result = runner.invoke(
        app, ["hosts", "import", str(DATA / "glpi.csv"), "--into", str(path), "--dry-run"]
    )
    assert result.exit_code == 0, result.stderr
    assert "2 host(s) to add" in result.stdout and "dry run: nothing written" in result.stdout
    assert "srv-ad01" in result.stdout and "SRV-AD01" in result.stdout  # renamed, and said so
    assert path.read_bytes() == ACME.read_bytes()


def test_same_address_and_port_is_a_duplicate(tmp_path: Path) -> None:
    path = playbook_copy(tmp_path)
    inventory = tmp_path / "dup.ini"
    inventory.write_text("db-new ansible_host=192.0.2.20 ansible_port=2222\n", encoding="utf-8")
    result = runner.invoke(app, ["hosts", "import", str(inventory), "--into", str(path)])
    assert result.exit_code == 2
    assert "192.0.2.20:2222 is already host 'db01' (perimeter.hosts[1])" in result.stderr


def test_missing_files_and_bad_format_are_usage_errors(tmp_path: Path) -> None:
    path = playbook_copy(tmp_path)
    result = runner.invoke(app, ["hosts", "import", str(tmp_path / "no.ini"), "--into", str(path)])
    assert result.exit_code == 2 and "no.ini: no such inventory" in result.stderr
    result = runner.invoke(
        app, ["hosts", "import", str(DATA / "hosts.ini"), "--into", str(path), "--format", "xml"]
    )
    assert result.exit_code == 2 and "--format 'xml': must be one of" in result.stderr
    result = runner.invoke(
        app, ["hosts", "import", str(DATA / "hosts.ini"), "--into", str(tmp_path / "none.yaml")]
    )
    assert result.exit_code == 2 and "none.yaml: no such file" in result.stderr


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=200), fmt=st.sampled_from(["ini", "yaml", "csv"]))
def test_any_inventory_text_gives_hosts_or_one_usage_error(text: str, fmt: str) -> None:
    """Hostile or broken files: hosts with slug names, or a UsageError, never another error."""
    try:
        hosts = parse_inventory(text, f"inv.{fmt}", fmt)  # type: ignore[arg-type]
    except UsageError:
        return
    for host in hosts:
        assert host.name == slugify(host.name) and host.name
        assert 1 <= host.port <= 65535


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.builds(
            ImportedHost,
            name=st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True),
            address=st.text(min_size=1, max_size=20).filter(lambda s: s.strip() == s),
            port=st.integers(1, 65535),
            user=st.none() | st.from_regex(r"[a-z]{1,8}", fullmatch=True),
            source=st.just("t"),
        ),
        min_size=1,
        max_size=4,
        unique_by=lambda h: h.name,
    )
)
def test_inserted_hosts_read_back_as_written(hosts: list[ImportedHost]) -> None:
    text = "perimeter:\n  hosts:\n    - {name: zz-existing, transport: local}\n  datasets: []\n"
    data = yaml.safe_load(insert_hosts(text, hosts))
    written = data["perimeter"]["hosts"][1:]
    assert [(h["name"], h["address"], h.get("port", 22), h.get("user")) for h in written] == [
        (h.name, h.address, h.port, h.user) for h in hosts
    ]
    assert data["perimeter"]["datasets"] == []


def test_host_names_yaml_would_read_as_booleans_or_numbers_stay_names() -> None:
    text = "perimeter:\n  hosts:\n    - {name: zz-existing, transport: local}\n  datasets: []\n"
    hosts = [
        ImportedHost(name=name, address="10.0.0.1", port=22, user=None, source="t")
        for name in ("on", "no", "null", "0123")
    ]
    data = yaml.safe_load(insert_hosts(text, hosts))
    assert [h["name"] for h in data["perimeter"]["hosts"][1:]] == ["on", "no", "null", "0123"]
