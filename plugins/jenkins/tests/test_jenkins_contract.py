"""The core's source contract suite, run against the fake Jenkins (a freestyle job and a multibranch project)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from jenkins_fake import TOKEN, USER, FakeJenkins, History
from metrichub_plugin_jenkins import JenkinsSource

from metrichub_core.testing import FakeUpstream
from metrichub_core.testing.source_contract import SourceContract


class TestJenkinsSourceContract(SourceContract):
    source_class = JenkinsSource
    # NOT_BUILT (#3) is no deployment; builds without commits ship no changes.
    expected_keys = {("deployment", f"deploy-api#{n}") for n in (1, 2, 4, 5)} | {("deployment", "shop/main#1")}

    @pytest.fixture
    def upstream(self) -> Iterator[FakeUpstream]:
        with FakeUpstream() as upstream:
            jenkins = FakeJenkins(upstream)
            jenkins.job("deploy-api")
            jenkins.folder("shop", multibranch=True)
            jenkins.job("shop/main", pipeline=True)
            history = History(jenkins)
            for result in ("SUCCESS", "FAILURE", "NOT_BUILT", "SUCCESS", "ABORTED"):
                history.build("deploy-api", result)
            history.build("shop/main", "SUCCESS")
            yield upstream

    def source_table(self, base_url: str) -> dict[str, Any]:
        return {
            "kind": "jenkins",
            "base_url": base_url,
            "username": USER,
            "api_token": TOKEN,
            "jobs": ["deploy-api", "shop"],
            "policy": {"rate_limit_per_second": 1000},
        }
