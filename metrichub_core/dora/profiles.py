"""Benchmark profiles: the published DORA cluster table of one report year, as data.

The rule that turns a team's figure into a level, for every profile and metric:
walk the levels from elite to medium and take the first whose published bound the
figure meets; a figure that meets none is ``low``. A published range ("between one
day and one week") is met by a figure up to its slower end; a "less than" bound is
strict; a published point value (CFR since 2023) is met by a figure at or below it.
Deployment frequency is classified from its band (see ``frequency_band``).

Sources: the 2021 report (p. 9) from dora.dev, and the 2023 and 2024 cluster tables
as reproduced by Octopus Deploy (the reports' sponsor); see docs/metrics.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from metrichub_core.errors import UnknownProfile

__all__ = [
    "DEFAULT_PROFILE",
    "PROFILES",
    "Band",
    "Bound",
    "Level",
    "Profile",
    "UnknownProfile",
    "get_profile",
    "worst",
]

Level = Literal["elite", "high", "medium", "low"]
Band = Literal["on-demand", "daily", "weekly", "monthly", "fewer"]

LEVELS: tuple[Level, ...] = ("elite", "high", "medium", "low")

HOUR = 3_600.0
DAY = 24 * HOUR
WEEK = 7 * DAY
MONTH = 730 * HOUR  # the month the peers use: 730 hours, 30.4 days
SIX_MONTHS = 6 * MONTH


@dataclass(frozen=True)
class Bound:
    """A published bound: figures ``< value`` (``strict``) or ``<= value`` meet it."""

    value: float
    strict: bool = False

    def met_by(self, figure: float) -> bool:
        return figure < self.value if self.strict else figure <= self.value


@dataclass(frozen=True)
class Profile:
    """One report year's cluster table; ``elite``/``high``/``medium`` bounds per metric."""

    name: str
    year: int
    lead_time: tuple[Bound, Bound, Bound]
    change_failure_rate: tuple[Bound, Bound, Bound]
    recovery_time: tuple[Bound, Bound, Bound]
    frequency: Mapping[Band, Level]
    """The level of each band; ``fewer`` applies when there is at least one deployment
    per six months, else the level is ``low``."""

    def classify(self, bounds: tuple[Bound, Bound, Bound], figure: float) -> Level:
        for level, bound in zip(LEVELS, bounds, strict=False):
            if bound.met_by(figure):
                return level
        return "low"


def _less_than(value: float) -> Bound:
    return Bound(value, strict=True)


def _up_to(value: float) -> Bound:
    return Bound(value)


PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile(
            name="dora-2021",
            year=2021,
            # elite: less than one hour; high: one day to one week; medium: one to six months.
            lead_time=(_less_than(HOUR), _up_to(WEEK), _up_to(SIX_MONTHS)),
            # elite 0-15 %; high, medium and low are all published as 16-30 %.
            change_failure_rate=(_up_to(0.15), _up_to(0.30), _up_to(0.30)),
            # time to restore: less than one hour; less than one day; one day to one week.
            recovery_time=(_less_than(HOUR), _less_than(DAY), _up_to(WEEK)),
            # elite on demand; high once per week to once per month; medium to once per six months.
            frequency={"on-demand": "elite", "daily": "high", "weekly": "high", "monthly": "high", "fewer": "medium"},
        ),
        Profile(
            name="dora-2023",
            year=2023,
            # less than one day; one day to one week; one week to one month (low repeats medium's range).
            lead_time=(_less_than(DAY), _up_to(WEEK), _up_to(MONTH)),
            # point values 5 %, 10 %, 15 % (low 64 %).
            change_failure_rate=(_up_to(0.05), _up_to(0.10), _up_to(0.15)),
            # failed deployment recovery: less than one hour; less than one day; one day to one week.
            recovery_time=(_less_than(HOUR), _less_than(DAY), _up_to(WEEK)),
            # on demand; once per day to once per week; once per week to once per month.
            frequency={"on-demand": "elite", "daily": "high", "weekly": "high", "monthly": "medium", "fewer": "low"},
        ),
        Profile(
            name="dora-2024",
            year=2024,
            # less than one day; one day to one week; one week to one month (low: one to six months).
            lead_time=(_less_than(DAY), _up_to(WEEK), _up_to(MONTH)),
            # point values 5 %, 20 %, 10 % (low 40 %): high and medium are inverted in the report,
            # so under the rule above medium cannot be reached through CFR.
            change_failure_rate=(_up_to(0.05), _up_to(0.20), _up_to(0.10)),
            # less than one hour; less than one day; less than one day (low: one week to one month).
            recovery_time=(_less_than(HOUR), _less_than(DAY), _less_than(DAY)),
            frequency={"on-demand": "elite", "daily": "high", "weekly": "high", "monthly": "medium", "fewer": "low"},
        ),
    )
}

DEFAULT_PROFILE = "dora-2024"


def get_profile(name: str | None) -> Profile:
    """The named profile (``None`` = the newest); ``UnknownProfile`` names the choices."""
    try:
        return PROFILES[name or DEFAULT_PROFILE]
    except KeyError:
        raise UnknownProfile("profile", f"unknown benchmark profile {name!r} (known: {', '.join(PROFILES)})") from None


def worst(levels: list[Level]) -> Level:
    """The lowest of ``levels`` (non-empty)."""
    return max(levels, key=LEVELS.index)
