from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from metrichub_core import Deployment
from metrichub_core.models import MAX_CHANGE_IDS
from metrichub_core.shipping import SHIPPED_SHAS, SUCCESS_HISTORY, ShipHistory, capped_change_ids, caused_by_reference

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Caused-by: 5123", "5123"),
        ("Broke checkout.\n\ncaused by: #5123\n", "5123"),
        ("**Caused-by:** `a84d88e7554f`", "a84d88e7554f"),
        ("> Caused-By:a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d", "a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d"),
        ("- Caused-by: 5123\r\n- Owner: sre", "5123"),
        ("Caused-by: platform/shop/main#42.", "platform/shop/main#42"),  # a Jenkins build id, sentence stop dropped
        ("Caused by: deploy-api#7, rolled back", "deploy-api#7"),
        ("Not caused by: anything on this line start", None),
        ("The deploy caused-by: 5 mention mid-line", None),
        ("Caused-by: ", None),
        ("", None),
        (None, None),
    ],
)
def test_caused_by_line(body: str | None, expected: str | None) -> None:
    assert caused_by_reference(body) == expected


def test_predecessor_is_the_previous_success_of_the_same_environment() -> None:
    history = ShipHistory.load(None)
    history.add_success("production", T0, "10", "aaa1111")
    history.add_success("staging", T0 + timedelta(hours=1), "11", "bbb2222")
    history.add_success("production", T0 + timedelta(hours=2), "12", "ccc3333")

    assert history.predecessor("production", T0 + timedelta(hours=3), "13") == "ccc3333"
    # A deployment collected late, between the two production ones, compares against the first.
    assert history.predecessor("production", T0 + timedelta(hours=1), "11") == "aaa1111"
    assert history.predecessor("production", T0, "10") is None
    assert history.predecessor("staging", T0 + timedelta(hours=3), "13") == "bbb2222"


def test_equal_start_times_order_numeric_ids_by_value_then_others_by_text() -> None:
    history = ShipHistory.load(None)
    history.add_success("production", T0, "9", "sha-nine")
    history.add_success("production", T0, "10", "sha-ten")  # 10 > 9 as numbers, though "10" < "9" as text
    history.add_success("production", T0, "job#1", "sha-job")

    assert history.predecessor("production", T0, "job#2") == "sha-job"
    assert history.predecessor("production", T0, "job#1") == "sha-ten"
    assert history.predecessor("production", T0, "10") == "sha-nine"


def test_history_is_bounded_and_survives_a_json_round_trip() -> None:
    history = ShipHistory.load(None)
    for n in range(SUCCESS_HISTORY + 5):
        history.add_success("production", T0 + timedelta(minutes=n), str(n), f"{n:040x}")
    history.add_success("production", T0, "0", f"{0:040x}")  # already forgotten: re-added, then trimmed away

    reloaded = ShipHistory.load(history.dump())
    assert len(reloaded.successes["production"]) == SUCCESS_HISTORY
    assert reloaded.successes["production"][0][1] == "5"
    assert reloaded.predecessor("production", T0 + timedelta(days=1), "999") == f"{SUCCESS_HISTORY + 4:040x}"


def test_resolve_maps_production_shas_and_passes_ids() -> None:
    history = ShipHistory.load(None)
    history.add_success("production", T0, "100", "a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d")
    history.add_success("staging", T0, "101", "ffff88e7554fc1fa21bcbc4efae3c782a70d2b9d")
    history.add_success("production", T0 + timedelta(hours=1), "102", "a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d")

    assert history.resolve("a84d88e") == "102"  # the latest production deployment of that commit
    assert history.resolve("A84D88E7554F") == "102"
    assert history.resolve("a84d88") == "a84d88"  # shorter than git's abbreviation: not guessed
    assert history.resolve("ffff88e7554f") == "ffff88e7554f"  # shipped to staging only
    assert history.resolve("5123") == "5123"
    assert history.resolve("deploy#4", is_deployment_id=lambda ref: "#" in ref) == "deploy#4"


def test_shipped_map_keeps_the_newest_entries() -> None:
    history = ShipHistory.load(None)
    for n in range(SHIPPED_SHAS + 3):
        history.add_success("production", T0 + timedelta(minutes=n), str(n), f"{n:040x}")

    assert len(history.shipped) == SHIPPED_SHAS
    assert history.resolve(f"{0:040x}") == f"{0:040x}"  # forgotten
    assert history.resolve(f"{SHIPPED_SHAS + 2:040x}") == str(SHIPPED_SHAS + 2)


def test_change_ids_are_capped_to_the_models_bound_keeping_the_newest(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.shipping")
    few = [f"c{n}" for n in range(3)]
    assert capped_change_ids(few, "d1", logger) == few and not caplog.records
    many = [f"c{n}" for n in range(MAX_CHANGE_IDS + 5)]  # oldest first
    kept = capped_change_ids(many, "d2", logger)
    assert len(kept) == MAX_CHANGE_IDS and kept[0] == "c5" and kept[-1] == many[-1]
    assert "deployment d2 ships 10005 changes: the oldest 5 are left out" in caplog.text
    Deployment(id="d2", source="ci", service="api", status="success", started_at=T0, change_ids=kept)  # accepted
