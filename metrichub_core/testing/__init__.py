"""Test helpers for MetricHub and its plugins: fake upstreams and contract suites.

- ``FakeUpstream``, ``Reply``: a scripted HTTP API served on 127.0.0.1 (``.upstream``).
- ``SourceContract``: the suite every source plugin runs (``.source_contract``; needs pytest).
- ``StorageContract``: the suite every storage backend runs; ``PersistentStorageContract`` adds
  reopening for backends that outlive the process (``.storage_contract``; needs pytest).
- ``SampleSource``: a small reference source (``.sample``); ``fake_distribution`` (``.distributions``).
"""

from metrichub_core.testing.distributions import fake_distribution
from metrichub_core.testing.upstream import FakeUpstream, RecordedRequest, Reply, max_requests_in_window, refused_url

__all__ = ["FakeUpstream", "RecordedRequest", "Reply", "fake_distribution", "max_requests_in_window", "refused_url"]
