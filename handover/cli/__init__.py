"""The `handover` command: the core commands (no Prefect needed).

Each area registers its commands on `app` from its own module:
playbook (validate, schema), bundle (keygen, seal, verify, open),
checklist, vault. The Prefect commands (server, serve, demo, run) are added
by `flows.cli`, which is the console entry point.

Errors: a HandoverError is printed as red lines on stderr and the process
exits with its `exit_code` (2 for usage errors, 1 for failed operations).
Errors of libraries the core does not know (the Prefect API's connection
errors, raised by httpx deep inside a flow run) become HandoverErrors through
translators that the layer knowing them registers (`translate_errors`);
anything else is a bug and shows a traceback.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import typer

from handover.errors import HandoverError

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(
    name="handover",
    help="Managed-IT-services contracts: takeover, implementation, run and reversibility.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


class _LazyConsole:
    """A rich Console made on its first use.

    Importing rich costs ~25 ms, and a command pays it only when it prints
    through a console: `seal` does for an error, a warning or a terminal's
    progress bar, not for its last line.
    Attribute access goes to the real Console; `rich_console()` hands the
    real one to rich's own classes (a Progress bar).
    """

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._made: Console | None = None

    def made(self) -> Console:
        if self._made is None:
            from rich.console import Console

            self._made = Console(**self._options)
        return self._made

    def __getattr__(self, name: str) -> Any:
        return getattr(self.made(), name)


err_console = cast("Console", _LazyConsole(stderr=True, highlight=False))
console = cast("Console", _LazyConsole(highlight=False))


def rich_console(lazy: Console) -> Console:
    """The real rich Console behind `console` or `err_console` (made now if not yet)."""
    return lazy.made() if isinstance(lazy, _LazyConsole) else lazy


def stderr_is_terminal() -> bool:
    """Whether stderr is a terminal, without importing rich (progress bars go there)."""
    try:
        return os.isatty(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):  # replaced by a test runner, or closed
        return False


ErrorTranslator = Callable[[Exception], HandoverError | None]
_TRANSLATORS: list[ErrorTranslator] = []


def translate_errors(translator: ErrorTranslator) -> ErrorTranslator:
    """Register `translator`: it turns an exception it knows into a HandoverError, else None.

    For the layers above the core (flows registers the Prefect API's
    connection errors), so that the core needs no import of their libraries.
    """
    if translator not in _TRANSLATORS:
        _TRANSLATORS.append(translator)
    return translator


def translated(error: Exception) -> HandoverError | None:
    """The HandoverError a registered translator makes of `error`, or None."""
    for translator in _TRANSLATORS:
        mapped = translator(error)
        if mapped is not None:
            return mapped
    return None


def print_error(error: HandoverError) -> None:
    """Print a HandoverError as one red line per problem, on stderr."""
    from rich.markup import escape

    for line in str(error).splitlines() or [type(error).__name__]:
        err_console.print(f"[red]error:[/red] {escape(line)}", markup=True, soft_wrap=True)


def fail(error: HandoverError) -> None:
    """Print a HandoverError and exit with its code."""
    print_error(error)
    raise typer.Exit(error.exit_code)


def run_app(application: typer.Typer, argv: list[str] | None = None) -> None:
    """Run a typer app, turning HandoverError into a clean message and exit code."""
    try:
        application(args=argv, standalone_mode=True)
    except HandoverError as error:
        print_error(error)
        sys.exit(error.exit_code)
    except Exception as error:
        mapped = translated(error)
        if mapped is None:
            raise
        print_error(mapped)
        sys.exit(mapped.exit_code)


def handles_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator for commands: HandoverError becomes a clean exit (for typer's test runner too)."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except HandoverError as error:
            fail(error)
        except Exception as error:
            mapped = translated(error)
            if mapped is None:
                raise
            fail(mapped)

    return wrapper


def skip_pydantic_plugins() -> None:
    """Let pydantic skip its plugin search for this process, unless the user set it.

    pydantic looks for plugins in every installed package's entry points the
    first time it builds a validator: ~20 ms of each core command's start.
    handover uses no pydantic plugin. Only for core commands: their children
    are tar, ssh and age, never Python, and a Prefect process keeps pydantic's
    default.
    """
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


def spare_final_collections() -> None:
    """Move every object alive now out of the garbage collector's sight, as the process ends.

    The interpreter's shutdown collects garbage several times over everything
    still alive (typer's commands, pydantic's schemas: hundreds of thousands
    of objects), ~40 ms of each command's end. At exit none of it is
    garbage worth finding. The shutdown itself is unchanged: threads are
    joined, atexit handlers and finalizers run, files are flushed and closed.
    Only for the process's own entry points: a test calling commands in its
    own process keeps its collector.
    """
    gc.freeze()


def main() -> None:
    """Entry point of the core-only command (no Prefect commands)."""
    skip_pydantic_plugins()
    if not register_for(sys.argv[1:]):
        _register()
    try:
        run_app(app)
    finally:
        spare_final_collections()


# The modules that register each top-level core command (with its subcommands).
# Only an optimisation: a command missing here still works, through the full
# registration (tests/unit/test_cli_lazy.py checks each entry against it).
_COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "keygen": ("bundle_cmd",),
    "seal": ("bundle_cmd",),
    "verify": ("bundle_cmd",),
    "open": ("bundle_cmd",),
    "checklist": ("checklist_cmd",),
    "audit": ("checklist_cmd",),
    "validate": ("playbook_cmd",),
    "schema": ("playbook_cmd",),
    "acceptance": ("acceptance_cmd",),
    "hosts": ("hosts_cmd",),
    "incident": ("incident_cmd", "onsite_cmd", "visit_cmd"),
    "onsite": ("onsite_cmd",),
    "visit": ("visit_cmd",),
    "item": ("item_cmd",),
    "vault": ("vault_cmd",),
    "state": ("state_cmd",),
}


def register_for(argv: Sequence[str]) -> bool:
    """Register only the module(s) of the core command `argv` names; False if it names none.

    Why: importing every command module (contracts, exit reports, SSH,
    pydantic models) costs about 0.4 CPU-s, more than sealing a small tree;
    `handover seal` needs only the bundle commands. Anything else (no command,
    an option first, a command of `flows`, an unknown name) returns False
    and the caller registers everything, so `handover --help` and the
    "No such command" message list every command. The app must still be a
    group: typer turns an app of one command into that command, so a module
    registering a single command takes the full path too.
    """
    if not argv or argv[0] not in _COMMAND_MODULES:
        return False
    import importlib

    if app.registered_commands or app.registered_groups:
        return False  # registered already: the full set, or another command's
    for module in _COMMAND_MODULES[argv[0]]:
        importlib.import_module(f"handover.cli.{module}")
    if len(app.registered_commands) + len(app.registered_groups) < 2:
        _register()
    return True


def _register() -> None:
    """Import the command modules: each adds its commands to `app` when first imported."""
    from handover.cli import (  # noqa: F401
        acceptance_cmd,
        bundle_cmd,
        checklist_cmd,
        hosts_cmd,
        incident_cmd,
        init_cmd,
        item_cmd,
        onsite_cmd,
        playbook_cmd,
        report_cmd,
        state_cmd,
        vault_cmd,
        visit_cmd,
    )
