"""Which playbooks a run started from a deployment may use: those inside the playbook folders.

A playbook decides what runs as the operator (dump commands, hosts, the
keys it names), with the vault key in the environment. Whoever can start a
served deployment from the Prefect UI or API chooses its `playbook_path`
parameter, so that path must not be free: it must name a regular file
inside one of the configured folders.

The folders are `HANDOVER_PLAYBOOK_DIRS` (os.pathsep-separated, relative
entries taken from the working directory), else `playbooks/` under the
working directory: the folder of the checkout where `handover serve` or a
worker runs (`HANDOVER_WORKDIR` in deployments/prefect.yaml), which holds
the shipped examples and the site's contracts. The state folder
(`.handover/`) is never a default: runs write there.

The check is on the resolved path (symlinks followed), so a link inside a
folder that points outside is refused; a path with a `..` part is refused
before anything is resolved, even one that would land inside, so a
parameter reads as what it is. Nothing here reads the playbook.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from handover.errors import UsageError

ENV_VAR = "HANDOVER_PLAYBOOK_DIRS"
DEFAULT_DIRS = ("playbooks",)
_SHOWN_CHARS = 200  # a hostile parameter is quoted, not copied whole into the message


class PlaybookOutsideFolders(UsageError):
    """A deployment run named a playbook outside the playbook folders (or no usable file)."""


def playbook_dirs(setting: str | None, cwd: Path) -> tuple[Path, ...]:
    """The playbook folders, resolved: `setting` (os.pathsep-separated) or the default.

    Empty entries are ignored; a setting with none left means the default.
    Folders that do not exist are kept (they match nothing).
    """
    entries = [entry for entry in (setting or "").split(os.pathsep) if entry.strip()]
    chosen = entries or list(DEFAULT_DIRS)
    return tuple(_absolute(Path(entry.strip()), cwd).resolve() for entry in chosen)


def check_playbook_path(raw: str, dirs: Sequence[Path], cwd: Path) -> Path:
    """The resolved playbook `raw` names, if it is a file inside one of `dirs`; else raise.

    `raw` is a deployment parameter: relative paths are taken from `cwd`.
    Raises PlaybookOutsideFolders with a one-line message naming the folders.
    """
    shown = _quote(raw)
    if not raw.strip() or "\0" in raw:
        raise PlaybookOutsideFolders(f"playbook {shown}: not a file path")
    path = Path(raw)
    if ".." in path.parts:
        raise PlaybookOutsideFolders(f"playbook {shown}: '..' is not allowed in a playbook path")
    resolved = _absolute(path, cwd).resolve()
    if not any(resolved.is_relative_to(folder) for folder in dirs):
        raise PlaybookOutsideFolders(
            f"playbook {shown} is outside the playbook folders ({_names(dirs)}); "
            f"move it into one, or add its folder to {ENV_VAR} where handover serve runs"
        )
    if not resolved.is_file():
        raise PlaybookOutsideFolders(f"playbook {shown}: no such file in the playbook folders")
    return resolved


def _absolute(path: Path, cwd: Path) -> Path:
    return path if path.is_absolute() else cwd / path


def _quote(raw: str) -> str:
    text = raw if len(raw) <= _SHOWN_CHARS else raw[:_SHOWN_CHARS] + "..."
    return repr(text)


def _names(dirs: Sequence[Path]) -> str:
    return ", ".join(str(folder) for folder in dirs) or "none configured"
