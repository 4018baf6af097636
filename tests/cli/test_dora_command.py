from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from metrichub_core import Change, Deployment, MetricHub
from metrichub_core.cli import main
from metrichub_core.cli.dora import format_seconds

MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def seed(url: str, merged: tuple[timedelta, timedelta] | None = None) -> None:
    """c1 and c2, merged ``merged`` after their commits (or never)."""
    c1, c2 = MONDAY - timedelta(hours=1), MONDAY + timedelta(hours=21)
    events = [
        Change(id="c1", source="git", service="api", committed_at=c1, merged_at=merged and c1 + merged[0]),
        Change(id="c2", source="git", service="api", committed_at=c2, merged_at=merged and c2 + merged[1]),
        Deployment(id="d1", source="ci", service="api", status="success", started_at=MONDAY,
                   finished_at=MONDAY, change_ids=["c1"], labels={"team": "core"}),
        Deployment(id="d2", source="ci", service="api", status="success", started_at=MONDAY + timedelta(days=1),
                   finished_at=MONDAY + timedelta(days=1), change_ids=["c2"], labels={"team": "core"}),
    ]  # fmt: skip

    async def ingest() -> None:
        async with MetricHub(url) as hub:
            await hub.ingest(events)

    asyncio.run(ingest())


def test_json_report_for_a_window(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/dora.db"
    seed(url)
    result = CliRunner().invoke(
        main, ["dora", "--storage", url, "--since", "2026-03-02", "--until", "2026-03-09", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["window"]["since"].startswith("2026-03-02T00:00:00")
    assert report["deployment_frequency"]["count"] == 2
    # Lead times: c1 shipped 1 h after its commit, c2 3 h after (d2 at Tue 10:00, commit Tue 07:00).
    assert report["lead_time"]["count"] == 2
    assert report["lead_time"]["median_seconds"] == 7_200.0


def test_table_names_the_filters_and_metrics(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/dora.db"
    seed(url)
    # Spaces around KEY and VALUE are dropped, as the API's label= parameter drops them.
    result = CliRunner().invoke(
        main, ["dora", "--storage", url, "--since", "2026-03-02", "--until", "2026-03-09", "--label", " team = core "]
    )
    assert result.exit_code == 0, result.output
    assert "2026-03-02 00:00 → 2026-03-09 00:00 UTC  service=all  environment=production  team=core" in result.output
    assert "median 2h, p90" in result.output
    assert "2 deployments" in result.output


def test_lead_time_breakdown_in_table_and_json(tmp_path: Path) -> None:
    # c1 committed Mon 09:00, merged 09:40, shipped by d1 at 10:00: 40 min to merge, 20 min to deploy.
    # c2 committed Tue 07:00, merged 07:30, shipped by d2 at Tue 10:00: 30 min, then 2 h 30 min.
    # Commit to merge [1,800, 2,400]: median 2,100 s (35m), p90 1,800 + 0.9 x 600 = 2,340 s (39m).
    # Merge to deploy [1,200, 9,000]: median 5,100 s (1h 25m), p90 1,200 + 0.9 x 7,800 = 8,220 s (2h 17m).
    url = f"sqlite:///{tmp_path}/dora.db"
    seed(url, merged=(timedelta(minutes=40), timedelta(minutes=30)))
    window = ["--storage", url, "--since", "2026-03-02", "--until", "2026-03-09"]
    table = CliRunner().invoke(main, ["dora", *window])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    lead = next(n for n, line in enumerate(lines) if line.startswith("Lead time for changes"))
    assert lines[lead + 1].split() == ["commit", "→", "merge", "median", "35m,", "p90", "39m", "(n=2)", "—"]
    assert lines[lead + 2].split() == ["merge", "→", "deploy", "median", "1h", "25m,", "p90", "2h", "17m", "(n=2)", "—"]
    dumped = CliRunner().invoke(main, ["dora", *window, "--format", "json"])
    assert json.loads(dumped.output)["lead_time"]["breakdown"] == {
        "commit_to_merge": {"median_seconds": 2100.0, "p90_seconds": 2340.0, "count": 2},
        "merge_to_deploy": {"median_seconds": 5100.0, "p90_seconds": 8220.0, "count": 2},
    }
    # Without merged_at there is no breakdown, and the table has no stage rows.
    plain = f"sqlite:///{tmp_path}/plain.db"
    seed(plain)
    output = CliRunner().invoke(main, ["dora", "--storage", plain, "--since", "2026-03-02", "--until", "2026-03-09"])
    assert "commit → merge" not in output.output and "merge → deploy" not in output.output


def test_bad_arguments_are_usage_errors(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/dora.db"
    runner = CliRunner()
    naive = runner.invoke(main, ["dora", "--storage", url, "--since", "2026-03-02T10:00"])
    assert naive.exit_code == 2 and "has no timezone" in naive.output
    label = runner.invoke(main, ["dora", "--storage", url, "--label", "team"])
    assert label.exit_code == 2 and "is not KEY=VALUE" in label.output
    quoted = runner.invoke(main, ["dora", "--storage", url, "--label", 'te"am=x'])  # the API's grammar: a 400 there
    assert quoted.exit_code == 2 and "is not KEY=VALUE" in quoted.output
    many = runner.invoke(main, ["dora", "--storage", url, *(f"--label=k{n}=v" for n in range(21))])
    assert many.exit_code == 2 and "at most 20 label filters" in many.output
    profile = runner.invoke(main, ["dora", "--storage", url, "--profile", "dora-1999"])
    assert profile.exit_code == 2 and "unknown benchmark profile 'dora-1999'" in profile.output


def test_format_seconds_keeps_the_two_largest_units() -> None:
    assert format_seconds(93_784) == "1d 2h"
    assert format_seconds(7_200) == "2h"
    assert format_seconds(59.6) == "1m"
    assert format_seconds(0) == "0s"
