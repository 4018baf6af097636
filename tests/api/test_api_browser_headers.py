"""Browser headers of the dashboard and its assets; the trailing-slash redirect never echoes the client's Host."""

from __future__ import annotations

import httpx
import pytest

PAGES = ["/", "/assets/dashboard.js", "/assets/dashboard.css"]


@pytest.mark.parametrize("path", PAGES)
async def test_dashboard_and_assets_forbid_framing_sniffing_and_foreign_code(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    policy = dict(part.strip().split(" ", 1) for part in response.headers["content-security-policy"].split(";"))
    # Only this origin's script, style sheet and API; nothing may frame the page or rebase its links.
    assert policy["default-src"] == "'none'" and policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert (
        policy["connect-src"] == "'self'" and policy["frame-ancestors"] == "'none'" and policy["base-uri"] == "'none'"
    )
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_the_page_has_no_inline_script_or_style(client: httpx.AsyncClient) -> None:
    page = (await client.get("/")).text
    assert "<script>" not in page and "<style" not in page and " style=" not in page and " on" + "click=" not in page
    script = (await client.get("/assets/dashboard.js")).text
    assert "innerHTML" not in script and "eval(" not in script, "values are set with textContent only"
    assert (await client.get("/assets/dashboard.js")).headers["content-type"].startswith("text/javascript")
    assert (await client.get("/assets/dashboard.css")).headers["content-type"].startswith("text/css")


async def test_unknown_assets_are_404(client: httpx.AsyncClient) -> None:
    for name in ("dashboard.html", "..%2Fapp.py", "nope.js"):
        response = await client.get(f"/assets/{name}")
        assert response.status_code == 404, name


@pytest.mark.parametrize("path", ["/api/v1/health/", "/api/v1/metrics/dora/?days=7", "/openapi.json/"])
async def test_trailing_slash_redirect_is_relative_whatever_the_host(client: httpx.AsyncClient, path: str) -> None:
    forged = await client.get(path, headers={"Host": "evil.example"})
    assert forged.status_code == 307
    location = forged.headers["location"]
    # Path (and query) only: no scheme, no host, never protocol-relative.
    assert (
        location == path.replace("/?", "?").rstrip("/") and location.startswith("/") and not location.startswith("//")
    )
    assert "evil.example" not in forged.text


async def test_a_slash_path_without_a_route_stays_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/nothing/here/", headers={"Host": "evil.example"})).status_code == 404
    response = await client.get("//evil.example/", headers={"Host": "evil.example"})
    assert "evil.example" not in response.headers.get("location", "")
