"""The dashboard in a real headless Chromium (Selenium + chromium-driver) against a real server on the 180-day demo.

Every figure the page shows is compared with ``GET /api/v1/metrics/dora`` for the same parameters
(the page's own window, pinned), after each filter change; drill-down rows are the API's lists.
``DASHBOARD_SCREENSHOTS=docs/images`` writes the README's screenshots there.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from real_server import serve

if os.environ.get("CI"):  # CI installs Chromium and the dev extra: a missing browser must fail, not skip
    from selenium import webdriver
else:
    webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chromium.webdriver import ChromiumDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_SECONDS = 20.0
TOKEN = "browser-token-3c1e"


def _binaries() -> tuple[str, str] | None:
    browser = next((found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    binaries = _binaries()
    if binaries is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium and chromedriver are needed (.ci/run installs Debian's chromium and chromium-driver)")
        pytest.skip("needs chromium and chromedriver")
    options = webdriver.ChromeOptions()
    options.binary_location = binaries[0]
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="metrichub-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--window-size=1280,900")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console errors, CSP violations among them
    driver = webdriver.Chrome(service=Service(binaries[1]), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(tmp_path_factory.mktemp("dashboard"), "", demo_days=180) as url:
        yield url


def wait_for(driver: WebDriver, script: str, what: str) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.02)
    status = driver.execute_script("return document.getElementById('status').textContent")
    raise AssertionError(f"the page never got {what} (status: {status!r})")


def ready(driver: WebDriver, view: str = "overview") -> None:
    wait_for(driver, f"return document.body.dataset.ready === {view!r}", f"ready={view}")


def pinned(driver: WebDriver) -> dict[str, Any]:
    """The page's query (its address) with the window it shows, pinned as since/until."""
    query = {
        key: values if key == "label" else values[0]
        for key, values in parse_qs(urlsplit(driver.current_url).query).items()
    }
    since, until = driver.execute_script("return document.body.dataset.window").split("|")
    query.pop("days", None)
    query.pop("view", None)
    query.pop("bucket", None)
    return {**query, "since": since, "until": until}


# The page's formatting, for comparing what it shows (dashboard.js: duration, percent, perWeek).
def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    rest, parts = round(seconds), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts[:2]) or "0s"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def expected_cards(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Per metric: the value text and the level text the page must show for this report."""
    frequency, lead = report["deployment_frequency"], report["lead_time"]
    failure, recovery = report["change_failure_rate"], report["failed_deployment_recovery_time"]
    rework = report["rework_rate"]

    def shown(present: bool, text: str, level: str | None) -> tuple[str, str]:
        return (text if present else "not enough data", level or "not rated")

    return {
        "deployment_frequency": shown(frequency["count"] > 0, f"{frequency['per_week']:.1f}/week", frequency["level"]),
        "lead_time": shown(lead["count"] > 0, duration(lead["median_seconds"]), lead["level"]),
        "change_failure_rate": shown(failure["value"] is not None, percent(failure["value"]), failure["level"]),
        "failed_deployment_recovery_time": shown(
            recovery["count"] > 0, duration(recovery["median_seconds"]), recovery["level"]
        ),
        "rework_rate": (shown(rework["value"] is not None, percent(rework["value"]), None)[0], "no benchmark"),
    }


def shown_cards(driver: WebDriver) -> dict[str, tuple[str, str]]:
    cards = driver.find_elements(By.CSS_SELECTOR, "article.card")
    return {
        (card.get_attribute("data-metric") or ""): (
            card.find_element(By.CSS_SELECTOR, '[data-role="value"]').text,
            card.find_element(By.CSS_SELECTOR, '[data-role="level"]').text,
        )
        for card in cards
    }


def api(base: str, path: str, params: dict[str, Any], token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{base}/api/v1{path}", params=params, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def assert_figures_are_the_reports(driver: WebDriver, base: str) -> dict[str, Any]:
    params = pinned(driver)
    report: dict[str, Any] = api(base, "/metrics/dora", params)
    assert shown_cards(driver) == expected_cards(report), params
    assert "overall " + (report["overall"]["level"] or "not rated") in driver.find_element(By.ID, "status").text
    for note in report["notes"]:
        assert note in driver.find_element(By.ID, "notes").text
    return report


def console_errors(driver: WebDriver) -> list[str]:
    """Errors logged in the browser's console since the last call (a CSP violation is one)."""
    assert isinstance(driver, ChromiumDriver)
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [entry["message"] for entry in entries if entry["level"] == "SEVERE"]


def screenshot(driver: WebDriver, name: str, width: int = 1280) -> None:
    folder = os.environ.get("DASHBOARD_SCREENSHOTS")
    if not folder:
        return
    driver.execute_script("window.scrollTo(0, 0)")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(height + 140, 4000))
    time.sleep(0.3)  # charts redraw on resize
    driver.save_screenshot(str(Path(folder) / f"{name}.png"))
    driver.set_window_size(1280, 900)


def test_every_filter_shows_the_reports_figures(browser: WebDriver, demo: str) -> None:
    browser.get(demo + "/")
    ready(browser)
    assert_figures_are_the_reports(browser, demo)
    screenshot(browser, "dashboard-overview")
    screenshot(browser, "dashboard-phone", width=390)
    # Readable at a phone's width: nothing wider than the screen but the tables, which scroll in their box.
    browser.set_window_size(390, 844)
    time.sleep(0.2)
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    browser.set_window_size(1280, 900)
    services = browser.find_elements(By.CSS_SELECTOR, "#services tbody tr[data-service]")
    listed = api(demo, "/metrics/dora/services", {k: v for k, v in pinned(browser).items() if k != "environment"})
    assert [(row.get_attribute("data-service"), row.get_attribute("data-environment")) for row in services] == [
        (item["filters"]["service"], item["filters"]["environment"]) for item in listed["items"]
    ]

    steps: list[tuple[str, str, str]] = [
        ("service", "checkout", "service=checkout"),
        ("environment", "staging", "environment=staging"),
        ("window", "90", "days=90"),
        ("bucket", "month", "bucket=month"),
        ("profile", "dora-2021", "profile=dora-2021"),
    ]
    for control, value, in_url in steps:
        Select(browser.find_element(By.ID, control)).select_by_value(value)
        ready(browser)
        assert in_url in browser.current_url, (control, browser.current_url)
        report = assert_figures_are_the_reports(browser, demo)
        assert report["profile"] == (value if control == "profile" else report["profile"])
    # A window of dates: since/until in the address instead of days.
    Select(browser.find_element(By.ID, "window")).select_by_value("custom")
    since, until = pinned(browser)["since"][:10], pinned(browser)["until"][:10]
    browser.execute_script(
        "const [s, u] = [document.getElementById('since'), document.getElementById('until')];"
        "u.value = arguments[1]; s.value = arguments[0]; s.dispatchEvent(new Event('change'));",
        since,
        until,
    )
    ready(browser)
    assert f"since={since}" in browser.current_url and f"until={until}" in browser.current_url
    assert "days=" not in browser.current_url
    assert_figures_are_the_reports(browser, demo)
    label = browser.find_element(By.ID, "label")
    label.send_keys("team=payments" + Keys.ENTER)
    ready(browser)
    assert "label=team%3Dpayments" in browser.current_url
    assert_figures_are_the_reports(browser, demo)
    # Month buckets: one chart point per bucket of /trend, empty buckets as gaps in the figures table.
    trend = api(demo, "/metrics/dora/trend", {**pinned(browser), "bucket": "month"})
    rows = browser.find_elements(By.CSS_SELECTOR, '[data-chart="lead_time"] details tbody tr')
    assert len(rows) == len(trend["points"])

    # The address alone reproduces the view.
    shown, address = shown_cards(browser), browser.current_url
    browser.get("about:blank")
    browser.get(address)
    ready(browser)
    assert shown_cards(browser) == shown
    assert console_errors(browser) == []


def test_service_view_and_drill_down_list_the_reports_events(browser: WebDriver, demo: str) -> None:
    browser.get(demo + "/")
    ready(browser)
    browser.find_element(
        By.CSS_SELECTOR, '#services tr[data-service="checkout"][data-environment="production"] a'
    ).click()
    ready(browser)
    assert "service=checkout" in browser.current_url
    report = assert_figures_are_the_reports(browser, demo)
    screenshot(browser, "dashboard-service")

    browser.find_element(By.CSS_SELECTOR, 'article[data-metric="deployment_frequency"] a[data-drill]').click()
    ready(browser, "deployments")
    # A relative window ("the last 30 days") moves on with the minute, which may turn between two views:
    # each list is compared with the report of the window that view shows.
    params = pinned(browser)
    report = api(demo, "/metrics/dora", params)
    listed = api(demo, "/metrics/dora/deployments", {**params, "limit": 1000})["items"]
    rows = browser.find_elements(By.CSS_SELECTOR, "#drill-table tbody tr[data-id]")
    assert [row.get_attribute("data-id") for row in rows] == [item["id"] for item in listed]
    assert sum(item["counted"] for item in listed) == report["deployment_frequency"]["count"]

    browser.back()
    ready(browser)
    browser.find_element(By.CSS_SELECTOR, 'article[data-metric="change_failure_rate"] a[data-drill]').click()
    ready(browser, "failures")
    report = api(demo, "/metrics/dora", pinned(browser))
    rows = browser.find_elements(By.CSS_SELECTOR, "#drill-table tbody tr[data-id]")
    assert len(rows) == report["change_failure_rate"]["failed"]
    failed = api(demo, "/metrics/dora/failures", {**pinned(browser), "limit": 1000})["items"]
    assert [row.get_attribute("data-id") for row in rows] == [item["id"] for item in failed]
    screenshot(browser, "dashboard-drilldown")
    assert console_errors(browser) == []


def test_a_view_with_no_data_says_so_with_the_note(browser: WebDriver, demo: str) -> None:
    browser.get(demo + "/?service=checkout&label=team%3Dnobody")
    ready(browser)
    report = assert_figures_are_the_reports(browser, demo)
    assert report["deployment_frequency"]["count"] == 0
    card = browser.find_element(By.CSS_SELECTOR, 'article[data-metric="lead_time"]')
    assert card.find_element(By.CSS_SELECTOR, '[data-role="value"]').text == "not enough data"
    notes = [note.text for note in card.find_elements(By.CSS_SELECTOR, '[data-role="note"]')]
    assert "lead time: no shipped change with a known commit time in the window, level not rated" in notes
    assert "0" not in card.find_element(By.CSS_SELECTOR, '[data-role="value"]').text


def test_first_paint_of_the_overview_is_measured(browser: WebDriver, demo: str) -> None:
    """Prints the overview's first contentful paint and the time until its figures are filled, from navigation
    start: the first load (the server computes the 180-day report) and the median of five more. No limit is
    asserted: timing goals live in the closing note, tests do not depend on the machine's speed."""
    runs = []
    for _ in range(6):
        browser.get("about:blank")
        browser.get(demo + "/?days=180")
        ready(browser)
        runs.append(
            browser.execute_script(
                "const paint = performance.getEntriesByName('first-contentful-paint')[0];"
                "const figures = performance.getEntriesByName('metrichub:figures')[0];"
                "return [paint ? paint.startTime : null, figures ? figures.startTime : null];"
            )
        )
    assert all(paint is not None and figures is not None for paint, figures in runs)
    (first_paint, first_figures), rest = runs[0], runs[1:]
    print(
        f"\noverview, 180-day demo, SQLite: first load: first contentful paint {first_paint:.0f} ms, figures filled "
        f"{first_figures:.0f} ms; median of {len(rest)} more: {statistics.median(r[0] for r in rest):.0f} ms, "
        f"{statistics.median(r[1] for r in rest):.0f} ms"
    )


def test_with_auth_all_the_page_asks_for_a_token_first(browser: WebDriver, tmp_path: Path) -> None:
    with serve(tmp_path, f'[api]\nauth = "all"\ntokens = ["{TOKEN}"]\n', demo_days=30) as url:
        browser.get(url + "/")
        wait_for(browser, "return !document.getElementById('login').hidden", "the token form")
        assert browser.execute_script("return performance.getEntriesByType('resource')"
                                      ".filter((e) => e.name.includes('/api/')).length") == 0  # fmt: skip
        browser.find_element(By.ID, "token").send_keys("wrong" + Keys.ENTER)
        wait_for(browser, "return document.getElementById('status').textContent.includes('refused')", "a refusal")
        browser.find_element(By.ID, "token").send_keys(TOKEN + Keys.ENTER)
        ready(browser)
        report = api(url, "/metrics/dora", pinned(browser), token=TOKEN)
        assert shown_cards(browser) == expected_cards(report)
        assert browser.execute_script("return sessionStorage.getItem('metrichub.token')") == TOKEN
        browser.execute_script("sessionStorage.clear()")
