"""Root typer app. Each command group lives in its own module exposing ``register(app)``."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="zendeploy",
    help="Hardware-aware zero-shot NAS: profile latency tables, search ZenNets under budgets, export and verify.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command modules, registered in pipeline order (space -> latency -> search -> export). A module that is not there
# yet is skipped, so the CLI works while parts are added.
COMMAND_MODULES = ["space", "score", "latency", "search", "export", "demo"]


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
    verbose: bool = typer.Option(False, "--verbose", help="Also show the output of the libraries zendeploy calls "
                                 "(TensorFlow Lite, torchao, torch; hidden by default, or ZENDEPLOY_VERBOSE=1)."),
):
    from . import logs
    from .quiet import verbose_requested

    logs.install(verbose=verbose or verbose_requested())
    if version:
        from .. import __version__

        typer.echo(f"zendeploy {__version__}")
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"{__package__}.{_name}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"{__package__}.{_name}":
            raise
        continue
    _module.register(app)


def _sigterm_as_interrupt(signum, frame):  # noqa: ARG001
    """SIGTERM (``timeout``, ``docker stop``, Slurm, systemd) stops a command the way Ctrl-C does: a search writes its
    checkpoint, a profile keeps its journal, and the command says how to resume."""
    raise KeyboardInterrupt


def main() -> None:
    import signal
    import sys

    from .common import expand_bare_options
    from .quiet import third_party_quiet, verbose_requested

    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    args = expand_bare_options(sys.argv[1:])
    with third_party_quiet(enabled=not verbose_requested(args)):
        app(args=args, prog_name="zendeploy")
