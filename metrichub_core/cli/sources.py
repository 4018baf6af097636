"""``metrichub sources``: configured sources, their last collection, and an optional check."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import click

from metrichub_core.cli._common import EXIT_FAILED, HubFactory, hub_options, run_async
from metrichub_core.hub import MetricHub
from metrichub_core.redaction import redact_data
from metrichub_core.registry import ConfiguredSource, SourceFault


@click.command("sources")
@click.option("--check", is_flag=True, help="Also call each source's check() against its upstream.")
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@hub_options
def command(make_hub: HubFactory, check: bool, output: str) -> None:
    """List the configured sources (secrets masked) and when each last collected successfully.

    A source whose table or plugin is at fault is listed with the reason. With --check,
    exits 1 when any source's check fails or any source is at fault.
    """

    async def run() -> list[dict[str, Any]]:
        async with make_hub() as hub:
            rows = []
            for source in hub.sources:
                await _probe(source)
                health = await hub.source_health(source.id)
                # URLs (base_url, in the config, in a fault) shown without credentials or secret parameters.
                rows.append(redact_data({**source.describe(), "last_success_at": health.last_success_at}))
            if check:
                problems = await asyncio.gather(*(_check(hub, row["id"]) for row in rows))
                for row, problem in zip(rows, problems, strict=True):
                    row["check"] = "ok" if problem is None else redact_data(problem)
            return rows

    rows = run_async(run())
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo("no sources configured: add a [sources.<id>] table to metrichub.toml")
    else:
        width = max(len(row["id"]) for row in rows)
        for row in rows:
            last = row["last_success_at"] or "never collected"
            line = f"{row['id']:<{width}}  {row['kind'] or '?':<10}  {row['base_url'] or '-'}  last success: {last}"
            if row["fault"]:
                line += f"  FAULT: {row['fault']}"
            elif "check" in row:
                line += f"  check: {row['check']}"
            click.echo(line)
    if check and any(row.get("check") != "ok" for row in rows):
        sys.exit(EXIT_FAILED)


async def _check(hub: MetricHub, source_id: str) -> str | None:
    configured = hub.sources[source_id]
    if configured.fault is not None:
        return configured.fault
    try:
        source = configured.create()
    except SourceFault as exc:
        return str(exc)
    try:
        await source.check()
    except Exception as exc:
        return configured.redact(f"{type(exc).__name__}: {exc}")
    finally:
        await source.ctx.http.aclose()
    return None


async def _probe(configured: ConfiguredSource) -> None:
    """Build the source once, so that a ``Source`` whose ``__init__`` fails is listed with its fault."""
    if configured.fault is not None:
        return
    try:
        source = configured.create()
    except SourceFault:
        return  # recorded in ``configured.fault``
    await source.ctx.http.aclose()
