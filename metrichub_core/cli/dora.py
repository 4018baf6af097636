"""``metrichub dora``: the DORA report as a table or as JSON."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from metrichub_core.cli._common import HubFactory, hub_options, run_async
from metrichub_core.filters import parse_labels, parse_moment


class _Moment(click.ParamType):  # type: ignore[type-arg]  # generic only in click >= 8.2
    name = "moment"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_moment(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _label(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    try:
        return parse_labels(values)  # the grammar and limits of the API's label= parameter
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


@click.command("dora")
@click.option(
    "--since", type=_Moment(), default="30d", show_default=True, help="Window start: ISO date/datetime or 30d."
)
@click.option("--until", type=_Moment(), help="Window end (exclusive): ISO date/datetime or 1d; default now.")
@click.option("--service", help="Only this service.")
@click.option("--environment", default="production", show_default=True, help="Deployment environment.")
@click.option(
    "--label", "labels", multiple=True, callback=_label, help="Filter by deployment label, e.g. team=payments."
)
@click.option("--profile", help="Benchmark profile: dora-2021, dora-2023, dora-2024 (default: newest).")
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@hub_options
def command(
    make_hub: HubFactory,
    since: datetime,
    until: datetime | None,
    service: str | None,
    environment: str,
    labels: dict[str, str],
    profile: str | None,
    output: str,
) -> None:
    """Compute the DORA report for a window [SINCE, UNTIL)."""

    async def compute() -> dict[str, Any]:
        async with make_hub() as hub:
            try:
                report = await hub.dora(
                    since=since, until=until, service=service, environment=environment, labels=labels, profile=profile
                )
            except ValueError as exc:
                raise click.UsageError(str(exc)) from None
            dumped: dict[str, Any] = report.model_dump(mode="json")
            return dumped

    report = run_async(compute())
    click.echo(json.dumps(report, indent=2) if output == "json" else render_table(report))


def render_table(report: dict[str, Any]) -> str:
    """A terminal rendering of the report JSON described in DESIGN.md."""
    window, filters = report["window"], report["filters"]
    scope = [f"service={filters.get('service') or 'all'}", f"environment={filters.get('environment')}"]
    scope += [f"{key}={value}" for key, value in filters.get("labels", {}).items()]
    header = (
        f"DORA report {_minutes(window['since'])} → {_minutes(window['until'])} UTC  "
        f"{'  '.join(scope)}  profile={report['profile']}"
    )
    frequency = report["deployment_frequency"]
    failure = report["change_failure_rate"]
    rework = report["rework_rate"]
    rows = [
        (
            "Deployment frequency",
            f"{frequency['count']} deployments, {frequency['per_day']:.2f}/day, {frequency['per_week']:.1f}/week"
            f" (band: {frequency['band'] or 'n/a'})",
            frequency.get("level"),
        ),
        ("Lead time for changes", _durations(report["lead_time"]), report["lead_time"].get("level")),
        *_breakdown(report["lead_time"].get("breakdown")),
        ("Change failure rate", _ratio(failure["value"], failure["failed"], failure["total"]), failure.get("level")),
        (
            "Failed-deployment recovery",
            _durations(report["failed_deployment_recovery_time"]),
            report["failed_deployment_recovery_time"].get("level"),
        ),
        ("Time to restore service", _durations(report["time_to_restore"]), None),
        ("Deployment rework rate", _ratio(rework["value"], rework["rework"], rework["total"]), None),
        ("Overall", "", report["overall"].get("level")),
    ]
    width = max(len(value) for _, value, _ in rows)
    lines = [header, "", f"{'Metric':<28} {'Value':<{width}}  Level", f"{'-' * 28} {'-' * width}  -----"]
    lines += [f"{name:<28} {value:<{width}}  {level or '—'}" for name, value, level in rows]
    if report.get("notes"):
        lines += ["", "Notes:", *(f"  - {note}" for note in report["notes"])]
    return "\n".join(lines)


def _minutes(moment: str) -> str:
    """``2026-03-02T10:15:42.123Z`` → ``2026-03-02 10:15``."""
    return moment.replace("T", " ")[:16]


def _durations(block: dict[str, Any]) -> str:
    if not block["count"]:
        text = "no data"
    else:
        text = (
            f"median {format_seconds(block['median_seconds'])}, p90 {format_seconds(block['p90_seconds'])},"
            f" mean {format_seconds(block['mean_seconds'])} (n={block['count']})"
        )
    return f"{text}, {block['open']} open" if "open" in block else text


def _breakdown(breakdown: dict[str, Any] | None) -> list[tuple[str, str, str | None]]:
    """The lead time's stages as indented rows (none when no counted change has ``merged_at``)."""
    if breakdown is None:
        return []
    rows: list[tuple[str, str, str | None]] = []
    for name, key in (("  commit → merge", "commit_to_merge"), ("  merge → deploy", "merge_to_deploy")):
        stage = breakdown[key]
        rows.append(
            (
                name,
                f"median {format_seconds(stage['median_seconds'])}, p90 {format_seconds(stage['p90_seconds'])}"
                f" (n={stage['count']})",
                None,
            )
        )
    return rows


def _ratio(value: float | None, part: int, total: int) -> str:
    return "no deployments" if value is None else f"{value:.1%} ({part}/{total})"


def format_seconds(seconds: float) -> str:
    """``93784`` → ``1d 2h``: the two largest units are enough to read a DORA figure."""
    remaining = round(seconds)
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        amount, remaining = divmod(remaining, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return " ".join(parts[:2]) or "0s"
