"""The Typer application: global options, command registration, and errors mapped to exit codes.

Exit codes (docs/ARCHITECTURE.md): 0 ok; 1 error with a one-line message; 2 usage; 3 a quality gate failed.
Tracebacks only with `--debug`. Locals are never shown: they may hold patient data. What the terminal
shows of the library's progress is decided here (`-q`, `-v`): library code only logs.
"""

from __future__ import annotations

import functools
import sys
from typing import Annotated, Callable

import typer

from medtk import __version__
from medtk.errors import MedtkError

app = typer.Typer(
    name="medtk",
    help="Train, compress, run and benchmark explainable medical-image classifiers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)

_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"medtk {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Show only warnings and errors on stderr.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show debug messages too.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    from medtk.progress import configure

    _state["debug"] = debug
    configure(-1 if quiet else 1 if verbose else 0)


def handle_errors(command: Callable) -> Callable:
    """Turn a `MedtkError` (exit code of its class) or an `OSError` (exit 1) into one line on stderr; a
    traceback only with --debug."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except MedtkError as error:
            if _state["debug"]:
                raise
            typer.echo(f"medtk: error: {error}", err=True)
            raise typer.Exit(error.exit_code) from None
        except OSError as error:  # the machine, not the input: a full disk, a read-only or vanished folder
            if _state["debug"]:
                raise
            where = f"{error.filename}: " if error.filename else ""
            typer.echo(f"medtk: error: {where}{error.strerror or error}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("medtk: interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper


def _register() -> None:
    from medtk.cli import commands

    for name, command in commands.COMMANDS.items():
        app.command(name)(handle_errors(command))


_register()


def main() -> None:
    try:
        app()
    except MedtkError as error:  # raised outside a command (e.g. while parsing) or with --debug
        if _state["debug"]:
            raise
        print(f"medtk: error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
