"""``metrichub plugins``: installed plugins, their versions, what they register, load errors."""

from __future__ import annotations

import json

import click

from metrichub_core.cli._common import HubFactory, hub_options


@click.command("plugins")
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--all", "include_builtins", is_flag=True, help="Include the built-in plugins.")
@hub_options
def command(make_hub: HubFactory, output: str, include_builtins: bool) -> None:
    """List installed plugins: name, version, what each registers, and load errors.

    METRICHUB_LOAD_PLUGINS / METRICHUB_DISABLE_PLUGINS (comma-separated names)
    choose which plugins load; METRICHUB_TRACE_PLUGINS=1 traces hook calls.
    """
    plugins = make_hub().plugins.describe(include_builtins=include_builtins)
    if output == "json":
        click.echo(json.dumps(plugins, indent=2))
        return
    if not plugins:
        click.echo("no plugins installed (pip install metrichub-plugin-...)")
        return
    for plugin in plugins:
        version = plugin["version"] or "-"
        name = f"{plugin['name']} ({plugin['distribution']} {version})" if plugin["distribution"] else plugin["name"]
        provides = [f"sources: {', '.join(plugin['sources'])}"] if plugin["sources"] else []
        provides += [f"storage: {', '.join(plugin['storage'])}"] if plugin["storage"] else []
        line = f"{name:<50}  {plugin['status']:<8}  {'; '.join(provides) or '-'}"
        click.echo(line)
        if plugin["error"]:
            click.echo(f"    error: {plugin['error']}")
