"""The playbook folders: a deployment run's playbook must be a file inside one of them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handover.contract.playbook_dirs import (
    ENV_VAR,
    PlaybookOutsideFolders,
    check_playbook_path,
    playbook_dirs,
)
from handover.errors import UsageError


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A working directory with playbooks/acme.yaml, and secrets.yaml beside playbooks/."""
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "acme.yaml").write_text("contract: {}\n")
    (tmp_path / "outside.yaml").write_text("contract: {}\n")
    return tmp_path


def dirs_of(site: Path) -> tuple[Path, ...]:
    return playbook_dirs(None, site)


def test_the_default_folder_is_playbooks_under_the_working_directory(site: Path) -> None:
    assert playbook_dirs(None, site) == ((site / "playbooks").resolve(),)
    assert playbook_dirs("", site) == playbook_dirs(None, site)
    assert playbook_dirs(os.pathsep, site) == playbook_dirs(None, site)


def test_the_setting_lists_folders_separated_by_pathsep(site: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    setting = os.pathsep.join(["contracts", str(other), ""])
    assert playbook_dirs(setting, site) == ((site / "contracts").resolve(), other.resolve())


def test_a_playbook_inside_is_accepted_by_absolute_or_relative_path(site: Path) -> None:
    inside = (site / "playbooks" / "acme.yaml").resolve()
    assert check_playbook_path(str(inside), dirs_of(site), site) == inside
    assert check_playbook_path("playbooks/acme.yaml", dirs_of(site), site) == inside


def test_a_playbook_outside_is_refused_naming_the_folders_and_the_setting(site: Path) -> None:
    with pytest.raises(PlaybookOutsideFolders) as caught:
        check_playbook_path(str(site / "outside.yaml"), dirs_of(site), site)
    message = str(caught.value)
    assert "outside the playbook folders" in message
    assert str((site / "playbooks").resolve()) in message and ENV_VAR in message
    assert "\n" not in message
    assert isinstance(caught.value, UsageError)  # exit 2 at a command boundary


@pytest.mark.parametrize("raw", ["/etc/passwd", "/dev/zero", "outside.yaml", "~/x.yaml"])
def test_other_files_are_refused(site: Path, raw: str) -> None:
    with pytest.raises(PlaybookOutsideFolders, match="outside the playbook folders"):
        check_playbook_path(raw, dirs_of(site), site)


def test_dot_dot_is_refused_even_when_it_lands_inside(site: Path) -> None:
    for raw in ("playbooks/../outside.yaml", "playbooks/../playbooks/acme.yaml"):
        with pytest.raises(PlaybookOutsideFolders, match=r"'\.\.' is not allowed"):
            check_playbook_path(raw, dirs_of(site), site)


def test_a_symlink_inside_that_points_outside_is_refused(site: Path) -> None:
    (site / "playbooks" / "link.yaml").symlink_to(site / "outside.yaml")
    (site / "playbooks" / "dirlink").symlink_to(site)
    for raw in ("playbooks/link.yaml", "playbooks/dirlink/outside.yaml"):
        with pytest.raises(PlaybookOutsideFolders, match="outside the playbook folders"):
            check_playbook_path(raw, dirs_of(site), site)


def test_a_symlink_that_stays_inside_is_followed(site: Path) -> None:
    (site / "playbooks" / "current.yaml").symlink_to("acme.yaml")
    found = check_playbook_path("playbooks/current.yaml", dirs_of(site), site)
    assert found == (site / "playbooks" / "acme.yaml").resolve()


def test_a_configured_folder_reached_through_a_symlink_matches_its_target(site: Path) -> None:
    (site / "linked").symlink_to(site / "playbooks")
    dirs = playbook_dirs("linked", site)
    assert check_playbook_path(str(site / "playbooks" / "acme.yaml"), dirs, site).is_file()


def test_a_sibling_folder_sharing_the_prefix_is_outside(site: Path) -> None:
    (site / "playbooks-evil").mkdir()
    (site / "playbooks-evil" / "x.yaml").write_text("contract: {}\n")
    with pytest.raises(PlaybookOutsideFolders, match="outside"):
        check_playbook_path("playbooks-evil/x.yaml", dirs_of(site), site)


@pytest.mark.parametrize("raw", ["playbooks/missing.yaml", "playbooks", "playbooks/"])
def test_inside_but_not_a_file_is_refused(site: Path, raw: str) -> None:
    with pytest.raises(PlaybookOutsideFolders, match="no such file"):
        check_playbook_path(raw, dirs_of(site), site)


@pytest.mark.parametrize("raw", ["", "  ", "playbooks/a\0.yaml"])
def test_empty_or_nul_is_not_a_path(site: Path, raw: str) -> None:
    with pytest.raises(PlaybookOutsideFolders, match="not a file path"):
        check_playbook_path(raw, dirs_of(site), site)


def test_a_huge_parameter_is_quoted_short(site: Path) -> None:
    with pytest.raises(PlaybookOutsideFolders) as caught:
        check_playbook_path("/tmp/" + "a" * 5000, dirs_of(site), site)
    assert len(str(caught.value)) < 600


def test_no_folder_configured_that_exists_accepts_nothing(site: Path) -> None:
    with pytest.raises(PlaybookOutsideFolders):
        check_playbook_path("playbooks/acme.yaml", playbook_dirs("nowhere", site), site)


_PARTS = st.sampled_from(
    ["playbooks", "acme.yaml", "..", ".", "outside.yaml", "link.yaml", "dirlink", "", "x"]
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(parts=st.lists(_PARTS, max_size=6), absolute=st.booleans(), noise=st.text(max_size=8))
def test_whatever_the_path_an_accepted_one_is_a_file_inside(
    site: Path, parts: list[str], absolute: bool, noise: str
) -> None:
    if not (site / "playbooks" / "link.yaml").is_symlink():
        (site / "playbooks" / "link.yaml").symlink_to(site / "outside.yaml")
        (site / "playbooks" / "dirlink").symlink_to(site)
    raw = "/".join([*parts, noise]) if noise else "/".join(parts)
    if absolute:
        raw = f"{site}/{raw}"
    dirs = dirs_of(site)
    try:
        found = check_playbook_path(raw, dirs, site)
    except PlaybookOutsideFolders as refused:
        assert "\n" not in str(refused)
        return
    assert found.is_file() and found.resolve() == found
    assert found.is_relative_to(dirs[0])
    assert found != (site / "outside.yaml").resolve()
