"""Console entry point: the core commands plus those that need Prefect.

It also registers, with the CLI's error translators, the one that turns a
Prefect API dying during a command into a one-line PrefectApiUnreachable
(`flows.server.api_error`) instead of a traceback.
"""

from __future__ import annotations

import sys

from handover.cli import (
    _register,
    app,
    register_for,
    run_app,
    skip_pydantic_plugins,
    spare_final_collections,
    translate_errors,
)


def main() -> None:
    """Run `handover`: a core command with its own module only, else every command.

    A core command (`handover seal`, `verify`, `checklist`...) imports only
    the module that registers it, and nothing of `flows`: it never talks to
    the Prefect API, and starting stays cheap (`register_for`).
    """
    try:
        _run()
    finally:
        spare_final_collections()


def _run() -> None:
    if register_for(sys.argv[1:]):
        skip_pydantic_plugins()
        run_app(app)
        return
    _register()
    import flows.commands  # registers server, serve, demo, run
    import flows.schedules_cmd  # noqa: F401  (registers schedules show / deploy)
    from flows.server import api_error

    translate_errors(api_error)
    run_app(app)


if __name__ == "__main__":
    main()
