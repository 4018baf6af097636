"""The dashboard's own script, run by Node against a stub DOM: no fetch without a token, then Bearer on every fetch."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from api_helpers import make_hub

from metrichub_core.api import create_app

NODE = shutil.which("node")

# A DOM just large enough for the dashboard; fetch answers 200 to "Bearer good" and 401 to anything else.
HARNESS = r"""
const fs = require("fs");
const [scriptPath, auth, steps] = [process.argv[2], process.argv[3], JSON.parse(process.argv[4])];
const elements = {};
function node(id) {
  return { id, hidden: false, value: "", className: "", textContent: "", clientWidth: 800, children: [], listeners: {},
    dataset: {}, append(...nodes) { this.children.push(...nodes); },
    replaceChildren(...nodes) { this.children = nodes; },
    setAttribute() {}, getAttribute() { return ""; }, querySelector() { return null; },
    addEventListener(type, listener) { this.listeners[type] = listener; }, focus() {} };
}
globalThis.document = {
  getElementById: (id) => (elements[id] ||= node(id)), body: node("body"),
  createElement: (tag) => node(tag), createElementNS: (ns, tag) => node(tag),
  querySelector: (selector) => (selector.startsWith("meta") ? { content: auth } : null),
};
globalThis.location = { search: "", pathname: "/" };
globalThis.history = { pushState() {} };
globalThis.window = { addEventListener() {} };
const store = new Map();
globalThis.sessionStorage = { getItem: (k) => (store.has(k) ? store.get(k) : null),
  setItem: (k, v) => store.set(k, String(v)), removeItem: (k) => store.delete(k) };
globalThis.localStorage = new Proxy({}, { get() { throw new Error("localStorage used"); } });
const calls = [];
globalThis.fetch = async (url, options) => {
  const authorization = options.headers.Authorization || null;
  calls.push({ url, authorization });
  const status = authorization === "Bearer good" ? 200 : 401;
  return { ok: status === 200, status, statusText: "", json: async () =>
    status === 200 ? { data: { items: [] } } : { error: { code: "unauthorized", message: "no" } } };
};
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));
(async () => {
  const report = [];
  new Function(fs.readFileSync(scriptPath, "utf8"))();
  await settle();
  for (const token of [null, ...steps]) {
    if (token !== null) {
      elements.token.value = token;
      elements.login.listeners.submit({ preventDefault() {} });
      await settle();
    }
    report.push({ calls: calls.splice(0), login_shown: !elements.login.hidden,
      stored: sessionStorage.getItem("metrichub.token"), status: elements.status.textContent });
  }
  console.log(JSON.stringify(report));
})();
"""


async def _page(client_for: Any, **api: Any) -> tuple[str, str]:
    """The served page's script and its auth mark (what ``querySelector`` answers in the harness)."""
    client = client_for(create_app(make_hub(**api), schedule=False))
    page = (await client.get("/")).text
    script = (await client.get("/assets/dashboard.js")).text
    mark = re.search(r'<meta name="metrichub-auth" content="(\w+)">', page)
    assert '<script src="/assets/dashboard.js"' in page and mark
    return script, mark.group(1)


def _run(tmp_path: Path, page: tuple[str, str], steps: list[str]) -> list[dict[str, Any]]:
    script, auth = page
    assert NODE is not None
    (tmp_path / "dashboard.js").write_text(script, encoding="utf-8")
    (tmp_path / "harness.js").write_text(HARNESS, encoding="utf-8")
    result = subprocess.run(
        [NODE, str(tmp_path / "harness.js"), str(tmp_path / "dashboard.js"), auth, json.dumps(steps)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.mark.skipif(NODE is None, reason="needs node to run the dashboard's script")
async def test_with_auth_all_nothing_is_fetched_until_a_token_is_given(tmp_path: Path, client_for: Any) -> None:
    page = await _page(client_for, tokens=["t"], auth="all")
    assert page[1] == "all"
    before, refused, accepted = _run(tmp_path, page, ["bad", "good"])
    assert before["calls"] == [] and before["login_shown"] and before["stored"] is None
    assert "needs a bearer token" in before["status"]
    # A refused token is forgotten at once and the prompt comes back; nothing else is fetched with it.
    assert [call["authorization"] for call in refused["calls"]] == ["Bearer bad"]
    assert refused["login_shown"] and refused["stored"] is None and "refused (401)" in refused["status"]
    # A good one is kept for the tab and sent on every request.
    assert {call["authorization"] for call in accepted["calls"]} == {"Bearer good"}
    assert {call["url"].split("?")[0] for call in accepted["calls"]} >= {"/api/v1/metrics/dora"}
    assert not accepted["login_shown"] and accepted["stored"] == "good"


@pytest.mark.skipif(NODE is None, reason="needs node to run the dashboard's script")
async def test_with_auth_writes_the_dashboard_reads_without_asking(tmp_path: Path, client_for: Any) -> None:
    (before,) = _run(tmp_path, await _page(client_for), [])
    assert before["calls"] and {call["authorization"] for call in before["calls"]} == {None}
    assert before["stored"] is None
