"""The end-of-life data file loads, is dated and sourced, and gives the flags the code tables gave.

The expected flags below were produced by the Python tables `eol.yaml` replaced
(handover.estate.inventory before the split), on the same inputs.
"""

from __future__ import annotations

from datetime import date

import pytest

from handover.estate.eol import eol_flags, eol_table
from handover.estate.inventory import Package


def test_the_shipped_table_loads_dated_and_sourced() -> None:
    table = eol_table()
    assert table.as_of == date(2026, 11, 27)
    assert [os.id for os in table.os] == ["debian", "ubuntu", "centos", "rhel", "alpine"]
    for os in table.os:
        assert os.source.startswith("https://"), os.id
        depths = {len(version.split(".")) for version in os.releases}
        assert len(depths) == 1, f"{os.id}: every release of a table has the same depth"
    assert len(table.packages) == 9
    for product in table.packages:
        assert product.source.startswith("https://") and product.rules, product.product


@pytest.mark.parametrize(
    ("os_release", "today", "expected"),
    [
        (
            {"ID": "debian", "VERSION_ID": "10", "PRETTY_NAME": "Debian GNU/Linux 10 (buster)"},
            date(2026, 11, 27),
            ["os: Debian GNU/Linux 10 (buster): end of life since 2024-06-30"],
        ),
        (
            {"ID": "debian", "VERSION_ID": "7"},
            date(2026, 1, 1),
            ["os: Debian 7: end of life (older than Debian 8)"],
        ),
        ({"ID": "debian", "VERSION_ID": "12"}, date(2026, 11, 27), []),
        (
            {"ID": "ubuntu", "VERSION_ID": "20.04"},
            date(2025, 5, 31),
            ["os: Ubuntu 20.04: end of life since 2025-05-31"],
        ),
        ({"ID": "ubuntu", "VERSION_ID": "20.10"}, date(2026, 1, 1), []),
        (
            {"ID": "alpine", "VERSION_ID": "3.16.9", "PRETTY_NAME": "Alpine Linux v3.16"},
            date(2026, 1, 1),
            ["os: Alpine Linux v3.16: end of life since 2024-05-23"],
        ),
        (
            {"ID": "alpine", "VERSION_ID": "3.14.1"},
            date(2026, 1, 1),
            ["os: Alpine 3.14.1: end of life (older than Alpine 3.15)"],
        ),
        (
            {"ID": "centos", "VERSION_ID": "8"},
            date(2026, 1, 1),
            ["os: CentOS 8: end of life since 2021-12-31"],
        ),
        ({"ID": "rhel", "VERSION_ID": "9.4"}, date(2026, 1, 1), []),
        ({"ID": "fedora", "VERSION_ID": "30"}, date(2026, 1, 1), []),
    ],
)
def test_os_flags_are_those_of_the_former_tables(
    os_release: dict[str, str], today: date, expected: list[str]
) -> None:
    assert eol_flags(os_release, [], today) == expected


def test_package_flags_are_those_of_the_former_tables() -> None:
    installed = [
        ("php7.3-fpm", "7.3.31-1"),
        ("php7.3-cli", "7.3.31-1"),
        ("php", "7.4.3"),
        ("php-cli", "8.2.1"),
        ("python2.7", "2.7.18"),
        ("libssl1.1", "1.1.1n-0"),
        ("openssl", "1:1.1.1k-12"),
        ("openssl", "3.0.15-1"),
        ("mysql-server-5.7", "5.7.44-1"),
        ("mysql-server", "8.0.36"),
        ("postgresql-11", "11.22-0"),
        ("nodejs", "16.20.2"),
        ("nodejs", "18.19.0"),
        ("nginx", "1.22.1"),
        ("php5-gd", "5.6.40"),
        ("php8.0-fpm", "8.0.30"),
        ("php5.6", "5.6.40"),
        ("php5-curl", "5.6.40"),
        ("php5-mysql", "5.6.40"),
        ("php5-json", "5.6.40"),
        ("php5-cli", "5.6.40"),
    ]
    packages = [Package(name=name, version=version) for name, version in installed]

    assert eol_flags({}, packages, date(2026, 1, 1)) == [
        "package: PHP 7 (end of life 2022-11-28): php7.3-fpm 7.3.31-1, php7.3-cli 7.3.31-1",
        "package: PHP 5/7 (end of life): php 7.4.3",
        "package: Python 2 (end of life 2020-01-01): python2.7 2.7.18",
        "package: OpenSSL 1.0/1.1 (end of life 2023-09-11): libssl1.1 1.1.1n-0, "
        "openssl 1:1.1.1k-12",
        "package: MySQL 5.x (end of life 2023-10-31): mysql-server-5.7 5.7.44-1",
        "package: PostgreSQL ≤ 12 (end of life): postgresql-11 11.22-0",
        "package: Node.js < 18 (end of life): nodejs 16.20.2",
        "package: PHP 5 (end of life 2018-12-31): php5-gd 5.6.40, php5.6 5.6.40, "
        "php5-curl 5.6.40, php5-mysql 5.6.40, php5-json 5.6.40 (+1 more)",
        "package: PHP 8.0 (end of life 2023-11-26): php8.0-fpm 8.0.30",
    ]
