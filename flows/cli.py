"""Console entry point: the core commands plus those that need Prefect."""

from __future__ import annotations

from handover.cli import _register, app, run_app


def main() -> None:
    """Run `handover` with every command registered."""
    _register()
    import flows.commands  # noqa: F401  (registers server, serve, demo, run)

    run_app(app)


if __name__ == "__main__":
    main()
