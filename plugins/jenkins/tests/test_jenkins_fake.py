"""The fake Jenkins behaves as Jenkins does where the plugin depends on it: auth, tree=, ranges, ``builds``."""

from __future__ import annotations

import base64
from datetime import timedelta

import httpx
import pytest
from jenkins_fake import T0, TOKEN, USER, FakeJenkins, parse_tree

AUTH = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()}


def test_tree_syntax() -> None:
    assert parse_tree("a,b[c,d[e]]{0,10},f{3},g{5,},h{,2}") == {
        "a": (None, None),
        "b": ({"c": (None, None), "d": ({"e": (None, None)}, None)}, (0, 10)),
        "f": (None, (3, 4)),
        "g": (None, (5, None)),
        "h": (None, (None, 2)),
    }


@pytest.fixture
def freestyle(jenkins: FakeJenkins) -> FakeJenkins:
    job = jenkins.job("deploy-api")
    for number in range(150):
        job.add("SUCCESS", T0 + timedelta(hours=number), sha=f"{number:040x}")
    return jenkins


async def test_anonymous_requests_get_403(freestyle: FakeJenkins) -> None:
    async with httpx.AsyncClient(base_url=freestyle.base_url) as client:
        assert (await client.get("/job/deploy-api/api/json")).status_code == 403
        assert (await client.get("/job/deploy-api/api/json", headers=AUTH)).status_code == 200
        wrong = {"Authorization": "Basic " + base64.b64encode(f"{USER}:nope".encode()).decode()}
        assert (await client.get("/job/deploy-api/api/json", headers=wrong)).status_code == 403


async def test_ranges_and_fields_are_served_as_asked(freestyle: FakeJenkins) -> None:
    async with httpx.AsyncClient(base_url=freestyle.base_url, headers=AUTH) as client:
        plain = (await client.get("/job/deploy-api/api/json")).json()
        assert "allBuilds" not in plain and len(plain["builds"]) == 100  # Jenkins' default view
        assert set(plain["builds"][0]) == {"_class", "number", "url"}
        tree = "allBuilds[number,result,actions[lastBuiltRevision[SHA1]]]{10,13}"
        body = (await client.get("/job/deploy-api/api/json", params={"tree": tree})).json()
        assert set(body) == {"_class", "allBuilds"}
        assert [build["number"] for build in body["allBuilds"]] == [140, 139, 138]  # newest first, [10, 13)
        assert set(body["allBuilds"][0]) == {"_class", "number", "result", "actions"}
        revisions = [action for action in body["allBuilds"][0]["actions"] if "lastBuiltRevision" in action]
        assert revisions[0]["lastBuiltRevision"] == {"SHA1": f"{139:040x}"}
        assert "remoteUrls" not in revisions[0] and "branch" not in revisions[0]["lastBuiltRevision"]
        capped = (await client.get("/job/deploy-api/api/json", params={"tree": "builds[number]"})).json()
        assert len(capped["builds"]) == 100 and capped["builds"][-1]["number"] == 51
        every = (await client.get("/job/deploy-api/api/json", params={"tree": "allBuilds[number]"})).json()
        assert len(every["allBuilds"]) == 150
        refused = await client.get("/job/deploy-api/api/json", params={"depth": "2"})
        assert refused.status_code == 400
