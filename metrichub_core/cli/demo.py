"""``metrichub demo``: load the built-in demo history into storage."""

from __future__ import annotations

import sys

import click

from metrichub_core.cli._common import HubFactory, hub_options, run_async
from metrichub_core.demo import demo_events
from metrichub_core.storage.base import EventQuery

BATCH_SIZE = 5_000


@click.command("demo")
@click.option("--days", default=180, show_default=True, type=click.IntRange(1, 3650), help="History length.")
@click.option("--seed", default=7, show_default=True, help="Another seed gives another history.")
@click.option("--if-empty", is_flag=True, help="Do nothing when storage already holds deployments.")
@hub_options
def command(make_hub: HubFactory, days: int, seed: int, if_empty: bool) -> None:
    """Load a realistic demo history (four teams, production and staging) into storage."""

    async def load() -> None:
        async with make_hub() as hub:
            if if_empty and (await hub.event_page(EventQuery(kind="deployment", limit=1))).items:
                click.echo("storage already holds deployments; demo not loaded")
                return
            events = list(demo_events(days=days, seed=seed))
            with click.progressbar(length=len(events), label="loading demo", file=sys.stderr) as bar:
                for start in range(0, len(events), BATCH_SIZE):
                    batch = events[start : start + BATCH_SIZE]
                    await hub.ingest(batch)
                    bar.update(len(batch))
            click.echo(f"loaded {len(events)} demo events ({days} days, seed {seed})")

    run_async(load())
