from __future__ import annotations

import httpx


async def test_dashboard_page_reads_the_api(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "<title>MetricHub" in page and '<script src="/assets/dashboard.js"' in page
    script = (await client.get("/assets/dashboard.js")).text
    for path in ('"/api/v1/metrics/dora"', '"/trend"', '"/services"', '"/profiles"'):
        assert path in script
    assert "innerHTML" not in script, "values are set with textContent only"
