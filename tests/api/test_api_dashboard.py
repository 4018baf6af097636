from __future__ import annotations

import httpx


async def test_dashboard_page_reads_the_api(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "<title>MetricHub" in page
    for path in ("/api/v1/metrics/dora", "/api/v1/metrics/dora/trend", "/api/v1/deployments"):
        assert path in page
    assert "innerHTML" not in page, "values are set with textContent only"
