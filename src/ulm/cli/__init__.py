"""The `ulm` command line: one typer app, one module per command group."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="ulm",
    help="Uncomplicated Live Migration: watch KVM/libvirt hosts and live-migrate VMs by policy.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    # Imported here so that each command module can import `app` helpers without cycles.
    from ulm.cli import doctor as _doctor  # noqa: F401
    from ulm.cli import export as _export  # noqa: F401
    from ulm.cli import lab as _lab  # noqa: F401
    from ulm.cli import maintenance as _maintenance  # noqa: F401
    from ulm.cli import plan as _plan  # noqa: F401
    from ulm.cli import policy as _policy  # noqa: F401
    from ulm.cli import replay as _replay  # noqa: F401
    from ulm.cli import report as _report  # noqa: F401
    from ulm.cli import run as _run  # noqa: F401
    from ulm.cli import simulate as _simulate  # noqa: F401
    from ulm.cli import store as _store  # noqa: F401


def main() -> None:
    _register()
    app()
