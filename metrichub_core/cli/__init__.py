"""The ``metrichub`` command: one module per subcommand."""

from __future__ import annotations

import click

from metrichub_core import __version__

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="metrichub")
def main() -> None:
    """MetricHub: DORA metrics from GitHub, GitLab, Jenkins and more."""


def _register_commands() -> None:
    from metrichub_core.cli import collect, demo, dora, plugins, serve, sources

    for module in (collect, demo, dora, plugins, sources, serve):
        main.add_command(module.command)


_register_commands()
