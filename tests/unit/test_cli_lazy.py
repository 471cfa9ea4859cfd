"""The core commands start with their own module only (issue #16: seal's fixed cost).

`handover seal` used to import every command module (contracts, exit
reports, SSH, all their pydantic models) before sealing a byte: about 0.4
CPU-s of a small seal's 0.6. The console entry now registers only the module
of the core command named (`handover.cli.register_for`); these tests run the
real entry in a subprocess (a fresh interpreter: the test process has imported
everything) and check what it loaded, and that each shortcut registers exactly
the command the full registration does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict

import pytest

from handover.cli import _COMMAND_MODULES

# Modules a bundle command must not load: Prefect, the flows and tasks layers,
# and the contract / exit-report machinery of the other commands.
_HEAVY = (
    "prefect",
    "flows.commands",
    "flows.schedules_cmd",
    "tasks",
    "handover.contract.loader",
    "handover.exit.progress",
    "handover.cli.acceptance_cmd",
    "paramiko",
)


def _loaded_after(argv: list[str], entry: str) -> dict[str, object]:
    """Run `entry`'s main() with `argv` in a fresh interpreter; its exit code and modules."""
    code = f"""
import json, sys
sys.argv = ["handover", *{argv!r}]
from {entry} import main
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code
print(json.dumps({{"code": code, "modules": sorted(sys.modules)}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize("entry", ["flows.cli", "handover.cli"])
@pytest.mark.parametrize("command", ["seal", "verify", "open", "keygen"])
def test_bundle_commands_start_without_prefect_flows_or_other_commands(
    entry: str, command: str
) -> None:
    result = _loaded_after([command, "--help"], entry)
    assert result["code"] == 0
    modules = set(result["modules"])  # type: ignore[call-overload]
    assert "handover.cli.bundle_cmd" in modules
    heavy = sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in _HEAVY))
    assert heavy == []


def test_help_without_command_still_lists_every_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    for name in [*_COMMAND_MODULES, "init", "report", "run", "serve", "server", "schedules"]:
        assert f" {name} " in done.stdout, name


_DESCRIBE = """
import json, sys
import typer.main
from handover.cli import _register, app, register_for

def describe(command):
    params = sorted((p.name, tuple(getattr(p, "opts", ())), p.required) for p in command.params)
    subs = getattr(command, "commands", {})
    return {"params": params, "help": command.help,
            "subs": {name: describe(sub) for name, sub in sorted(subs.items())}}

names = sys.argv[1:]
assert register_for(names[:1])
shortcut = typer.main.get_command(app).commands
first = {name: describe(shortcut[name]) for name in names}
_register()
full = typer.main.get_command(app).commands
print(json.dumps({"shortcut": first, "full": {name: describe(full[name]) for name in names}}))
"""


def _groups() -> list[list[str]]:
    by_modules: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for name, modules in _COMMAND_MODULES.items():
        by_modules[modules].append(name)
    return list(by_modules.values())


@pytest.mark.parametrize("names", _groups(), ids=lambda names: "-".join(names))
def test_each_shortcut_registers_the_same_command_as_the_full_registration(
    names: list[str],
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _DESCRIBE, *names],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["shortcut"] == result["full"]
    assert all(result["full"][name] for name in names)


def test_unknown_or_optional_first_word_takes_the_full_path() -> None:
    result = _loaded_after(["no-such-command"], "flows.cli")
    assert result["code"] == 2
    assert "flows.commands" in result["modules"]  # type: ignore[operator]
