"""The ``webhook_deliveries`` table's SQL: delivery ids already received (``WebhookDeliveries``).

Ids are numbered as they are first claimed (``seq``); an expired id is deleted before a
claim, so claiming it again succeeds, and after each new id only the ``max_ids`` highest
numbers are kept. The unique key makes a claim atomic across processes: of two
concurrent inserts of one id, one inserts a row and the other none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from metrichub_core.storage.base import DeliveryRetention
from metrichub_core.storage.sql.dialect import Dialect
from metrichub_core.storage.sql.paging import to_micros

__all__ = ["DELIVERIES_DDL", "Claim", "claim", "release"]

DELIVERIES_DDL = """
CREATE TABLE webhook_deliveries (
    seq {serial},
    source_id TEXT NOT NULL,
    delivery TEXT NOT NULL,
    received_at {integer} NOT NULL,
    UNIQUE (source_id, delivery)
);
CREATE INDEX webhook_deliveries_by_time ON webhook_deliveries (received_at)
"""
"""The table, formatted with the dialect's auto-numbered primary key (``serial``) and ``integer``."""

Statement = tuple[str, tuple[Any, ...]]


@dataclass(frozen=True)
class Claim:
    """One claim's statements, run in this order in one transaction.

    ``insert`` writes one row exactly when the id was not remembered (its row count says
    whether the claim succeeded); ``bound`` runs only then.
    """

    expire: Statement
    insert: Statement
    bound: Statement


def claim(dialect: Dialect, source_id: str, delivery: str, at: datetime, retention: DeliveryRetention) -> Claim:
    """The statements claiming ``delivery`` of ``source_id`` at ``at`` (see ``WebhookDeliveries``)."""
    mark = dialect.mark
    return Claim(
        expire=(f"DELETE FROM webhook_deliveries WHERE received_at < {mark}", (to_micros(at - retention.ttl),)),
        insert=(
            f"INSERT INTO webhook_deliveries (source_id, delivery, received_at) VALUES ({dialect.marks(3)}) "
            "ON CONFLICT (source_id, delivery) DO NOTHING",
            (source_id, delivery, to_micros(at)),
        ),
        bound=(
            f"DELETE FROM webhook_deliveries WHERE seq <= (SELECT max(seq) FROM webhook_deliveries) - {mark}",
            (retention.max_ids,),
        ),
    )


def release(dialect: Dialect, source_id: str, delivery: str) -> Statement:
    """The statement forgetting ``delivery`` of ``source_id``."""
    return (
        f"DELETE FROM webhook_deliveries WHERE source_id = {dialect.mark} AND delivery = {dialect.mark}",
        (source_id, delivery),
    )
