"""parse_updates on the output of UPDATES_SCRIPT, and the record of a host without a shell."""

from __future__ import annotations

from handover.operations.updates import MAX_PACKAGES_LISTED, UpdatesUnreadable, parse_updates

APT_OUTPUT = """manager: apt
Inst libssl3 [3.0.2-0ubuntu1.10] (3.0.2-0ubuntu1.12 Ubuntu:22.04/jammy-security [amd64])
Inst tzdata [2023c-0ubuntu0.22.04.1] (2024a-0ubuntu0.22.04 Ubuntu:22.04/jammy-updates [all])

"""


def test_apt_lines_are_counted_security_apart() -> None:
    updates = parse_updates("web01", APT_OUTPUT)
    assert updates.package_manager == "apt"
    assert (updates.pending, updates.security) == (2, 1)
    assert updates.packages[0].startswith("Inst libssl3")
    assert set(updates.model_dump()) == {
        "host",
        "package_manager",
        "pending",
        "security",
        "packages",
    }


def test_no_output_means_an_unknown_manager_and_long_lists_are_cut() -> None:
    assert parse_updates("db01", "").package_manager == "unknown"
    many = "manager: dnf\n" + "\n".join(f"pkg{i}.x86_64 1.{i} updates" for i in range(500))
    updates = parse_updates("db01", many)
    assert updates.pending == 500 and len(updates.packages) == MAX_PACKAGES_LISTED


def test_an_unreadable_host_keeps_its_record_shape() -> None:
    record = UpdatesUnreadable(host="files01", unreadable="no shell").model_dump()
    assert record == {"host": "files01", "package_manager": None, "unreadable": "no shell"}
