"""A real project's release history (Click 8.0.0 to 8.1.8, see fixtures/README.md), imported offline.

The expected ranges below were read with ``git log`` on a clone of pallets/click, e.g.
``git log --no-merges --format='%h %aI %s' 8.1.2 --not 8.1.1 8.1.0 8.0.4 8.0.3 8.0.2 8.0.1 8.0.0``,
and the test reads them again with ``git log`` on the imported fixture.
"""

from __future__ import annotations

import subprocess
from datetime import date, datetime
from pathlib import Path

import pytest
from git_repos import collected, git_env

from metrichub_core import MetricHub
from metrichub_core.config import Settings

FIXTURE = Path(__file__).parent / "fixtures" / "click-8.0-8.1.fast-export"
EARLIER_THAN_8_1_2 = ["8.1.1", "8.1.0", "8.0.4", "8.0.3", "8.0.2", "8.0.1", "8.0.0"]

# git log on the original clone (abbreviated original ids; the fixture's ids differ, subjects and dates do not):
RANGE_8_1_1 = [  # tag 8.1.1: 2022-03-30T13:13:29-07:00
    ("2022-03-30T13:07:09-07:00", "release version 8.1.1"),  # 3c301eba
    ("2022-03-29T23:02:52-04:00", "fix(types): decorator typing fails"),  # e234cf95
    ("2022-03-30T12:45:31-07:00", "start version 8.1.1"),  # fb7c6dba
]
RANGE_8_1_2 = [  # tag 8.1.2: 2022-03-31T13:50:27-07:00
    ("2022-03-31T13:48:20-07:00", "release version 8.1.2"),  # 2f1c35a4
    ("2022-03-31T13:41:31-07:00", "restore Path param order"),  # b36bf8f9
    ("2022-03-31T22:53:15+03:00", "fix readable path check error message"),  # 92cebe90
    ("2022-03-31T13:35:40-07:00", "start version 8.1.2"),  # 456fbb6b
]
RANGE_8_0_3 = [  # tag 8.0.3 (from the 8.0.x maintenance branch): 2021-10-10T11:07:43-07:00
    ("2021-10-10T11:04:49-07:00", "release version 8.0.3"),  # 90fb9f50
    ("2021-10-10T10:54:41-07:00", "invoke type casts default values"),  # 662a30e4
    ("2021-10-10T16:42:07+01:00", "click.confirm preserves prompt when readline is imported"),  # f31d564f
    ("2021-10-10T10:14:55-07:00", "use pathlib to resolve symlinks"),  # c8ca29bd
]


@pytest.fixture
def click(tmp_path: Path) -> Path:
    bare = tmp_path / "click.git"
    env = git_env()
    subprocess.run(["git", "init", "--quiet", "--bare", str(bare)], check=True, env=env, timeout=60)
    with FIXTURE.open("rb") as stream:
        subprocess.run(
            ["git", "-C", str(bare), "fast-import", "--quiet"], stdin=stream, check=True, env=env, timeout=60
        )
    return bare


def git_log(repository: Path, *args: str) -> list[tuple[str, str]]:
    out = subprocess.run(["git", "-C", str(repository), "log", "--no-merges", "--format=%aI%x00%s", *args],
                         check=True, capture_output=True, text=True, env=git_env(), timeout=60).stdout  # fmt: skip
    return [(line.split("\0")[0], line.split("\0")[1]) for line in out.splitlines()]


async def test_click_release_history(click: Path) -> None:
    # The fixture's git log agrees with the original's, read by hand above.
    assert git_log(click, "8.1.1", "--not", *EARLIER_THAN_8_1_2[1:]) == RANGE_8_1_1
    assert git_log(click, "8.1.2", "--not", *EARLIER_THAN_8_1_2) == RANGE_8_1_2
    assert git_log(click, "8.0.3", "--not", "8.0.2", "8.0.1", "8.0.0") == RANGE_8_0_3

    async with MetricHub(
        "memory://", settings=Settings(sources={"click": {"kind": "git", "repository": str(click)}})
    ) as hub:
        [result] = await hub.collect()
        assert result.ok, result.error
        deployments, changes = await collected(hub)
        report = await hub.dora(since=date(2022, 3, 30), until=date(2022, 4, 1), service="click")

    assert len(deployments) == 14  # 15 tags; 8.0.x is a branch marker, not a release
    assert "8.0.x" not in deployments
    assert all(event.labels == {} and event.service == "click" for event in deployments.values())  # all annotated
    assert deployments["8.1.2"].finished_at == datetime.fromisoformat("2022-03-31T20:50:27+00:00")

    for tag, expected in (("8.1.1", RANGE_8_1_1), ("8.1.2", RANGE_8_1_2), ("8.0.3", RANGE_8_0_3)):
        authored = sorted(changes[sha].committed_at for sha in deployments[tag].change_ids)
        assert authored == sorted(datetime.fromisoformat(when) for when, _ in expected), tag
    # Every commit is shipped once: the 8.0.x fixes merged back into main are not re-shipped by 8.1.0.
    every = [sha for event in deployments.values() for sha in event.change_ids]
    assert len(every) == len(set(every))

    # Lead times by hand, for the deployments finished in [2022-03-30, 2022-04-01) UTC (8.1.1 and 8.1.2):
    #   8.1.1 at 13:13:29-07:00 (20:13:29Z):
    #     release version 8.1.1  13:07:09-07:00 ->     6m20s =   380 s
    #     decorator typing fails 2022-03-29T23:02:52-04:00 = 03:02:52Z -> 17h10m37s = 61837 s
    #     start version 8.1.1    12:45:31-07:00 ->    27m58s =  1678 s
    #   8.1.2 at 13:50:27-07:00 (20:50:27Z):
    #     release version 8.1.2  13:48:20-07:00 ->     2m07s =   127 s
    #     restore Path order     13:41:31-07:00 ->     8m56s =   536 s
    #     readable path message  22:53:15+03:00 = 19:53:15Z -> 57m12s = 3432 s
    #     start version 8.1.2    13:35:40-07:00 ->    14m47s =   887 s
    # Sorted [127, 380, 536, 887, 1678, 3432, 61837]: median 887 s; sum 68877 s, mean 68877/7 = 9839.571 s.
    assert report.lead_time.count == 7
    assert report.lead_time.median_seconds == pytest.approx(887)
    assert report.lead_time.mean_seconds == pytest.approx(68877 / 7)
    assert report.deployment_frequency.count == 2


def test_fixture_holds_data_only() -> None:
    """No file contents or operations and no e-mail addresses, as fixtures/README.md states."""
    text = FIXTURE.read_bytes()
    assert len(text) < 200_000
    assert b"\nblob\n" not in text and b"\nM 100644 " not in text
    people = [line for line in text.split(b"\n") if line.startswith((b"author ", b"committer ", b"tagger "))]
    assert people and all(b" <> " in line for line in people)
