"""The DORA engine: documented rules over a narrow query interface (``DoraData``).

The engine is pure: it knows no HTTP, plugin or storage engine. A backend answers
``DoraData.dora_facts``; ``dora_report`` and ``dora_trend`` turn facts into reports.
"""

from metrichub_core.dora._engine import build_report, dora_report, dora_trend, make_options, make_scope
from metrichub_core.dora._errors import DoraQueryError
from metrichub_core.dora._protocol import (
    DoraData,
    DoraFacts,
    DoraOptions,
    DoraScope,
    FactsRequest,
    RecoveryClock,
    Window,
)
from metrichub_core.dora._report import (
    ChangeFailureRate,
    DeploymentFrequency,
    DoraReport,
    DoraTrend,
    LeadTime,
    LeadTimeBreakdown,
    LeadTimeStage,
    Overall,
    RecoveryTime,
    ReportFilters,
    ReportWindow,
    ReworkRate,
    TimeToRestore,
    TrendBucket,
)
from metrichub_core.dora._stats import BUCKET_FLOOR_SECONDS, GAMMA, Bucket, Summary, bucket_of
from metrichub_core.dora._windows import DEFAULT_DAYS, resolve_window, split
from metrichub_core.dora.profiles import DEFAULT_PROFILE, PROFILES, Band, Level, Profile, UnknownProfile

__all__ = [
    "BUCKET_FLOOR_SECONDS",
    "DEFAULT_DAYS",
    "DEFAULT_PROFILE",
    "GAMMA",
    "PROFILES",
    "Band",
    "Bucket",
    "ChangeFailureRate",
    "DeploymentFrequency",
    "DoraData",
    "DoraFacts",
    "DoraOptions",
    "DoraQueryError",
    "DoraReport",
    "DoraScope",
    "DoraTrend",
    "FactsRequest",
    "LeadTime",
    "LeadTimeBreakdown",
    "LeadTimeStage",
    "Level",
    "Overall",
    "Profile",
    "RecoveryClock",
    "RecoveryTime",
    "ReportFilters",
    "ReportWindow",
    "ReworkRate",
    "Summary",
    "TimeToRestore",
    "TrendBucket",
    "UnknownProfile",
    "Window",
    "bucket_of",
    "build_report",
    "dora_report",
    "dora_trend",
    "make_options",
    "make_scope",
    "resolve_window",
    "split",
]
