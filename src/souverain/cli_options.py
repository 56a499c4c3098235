"""Options shared by the `souverain` subcommands."""

from __future__ import annotations

import click

config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    envvar="SOUVERAIN_CONFIG",
    help="YAML configuration file (env: SOUVERAIN_CONFIG). Default: the embedded defaults.",
)
