"""The ``gedanken`` command. Each package registers its own sub-commands; this module only assembles them."""

from __future__ import annotations

import logging

import typer
from rich.logging import RichHandler

app = typer.Typer(
    name="gedanken",
    help="World models audited as simulators against exact physics ground truth.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(show_path=False, show_time=False)],
    )


def _register() -> None:
    # Sub-command groups live next to the code they drive (library modules never parse arguments).
    pass


_register()

if __name__ == "__main__":
    app()
