"""``metrichub collect``: collect configured sources concurrently, with live progress."""

from __future__ import annotations

import json
import sys

import click

from metrichub_core.cli._common import EXIT_FAILED, BadConfig, HubFactory, hub_options, run_async
from metrichub_core.collection import Progress, SourceResult
from metrichub_core.redaction import redact_data, redact_url
from metrichub_core.registry import UnknownSource


class _LiveProgress:
    """One stderr line per change: a source starts, stores a batch, finishes.

    A batch's DORA tables are derived in the transaction that stores it, so each batch line
    is the derivation's progress too: nothing is left to derive after the last one.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, update: Progress) -> None:
        if not self.enabled:
            return
        if update.phase == "started":
            message = "collecting..."
        elif update.phase == "events":
            message = f"{update.events} events stored and derived"
        else:
            result = update.result
            message = "done" if result is not None and result.ok else "failed"
        click.echo(f"  {update.source_id}: {message}", err=True)


def summary_line(result: SourceResult, width: int) -> str:
    status = "ok" if result.ok else "FAILED"
    line = f"{result.id:<{width}}  {status:<6}  {result.events:>7} events  {result.duration_seconds:7.2f}s"
    if result.full:
        line += "  (full)"
    if result.error:
        line += f"  {redact_url(result.error)}"
    return line


@click.command("collect")
@click.argument("source_ids", nargs=-1, metavar="[SOURCE_ID]...")
@click.option("--full", is_flag=True, help="Ignore saved cursors and collect everything again.")
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="No live progress on stderr.")
@hub_options
def command(make_hub: HubFactory, source_ids: tuple[str, ...], full: bool, output: str, quiet: bool) -> None:
    """Collect the configured sources (all, or the SOURCE_IDs given) concurrently.

    Exit status: 0 when every source succeeded, 1 when any failed (the others' data
    is stored), 2 on bad usage or configuration.
    """

    async def run() -> list[SourceResult]:
        async with make_hub() as hub:
            if len(hub.sources) == 0:
                raise BadConfig("no sources configured: add a [sources.<id>] table to metrichub.toml")
            try:
                return await hub.collect(list(source_ids) or None, full, progress=_LiveProgress(not quiet))
            except UnknownSource as exc:
                raise BadConfig(str(exc)) from None

    results = run_async(run())
    if output == "json":
        click.echo(json.dumps([redact_data(result.as_dict()) for result in results], indent=2))
    else:
        width = max(len(result.id) for result in results)
        for result in results:
            click.echo(summary_line(result, width))
    if not all(result.ok for result in results):
        sys.exit(EXIT_FAILED)
