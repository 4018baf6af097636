"""``POST /webhooks/{source_id}``: verified and parsed by the source's plugin, stored before the acknowledgement."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from pydantic import BaseModel, ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

from metrichub_core.api.context import ApiContext, context
from metrichub_core.api.deliveries import delivery_id
from metrichub_core.api.envelope import ok, trace_id_of
from metrichub_core.api.errors import ApiError, field_errors
from metrichub_core.api.nul import refuse_nul_in_events
from metrichub_core.api.operations import Operations
from metrichub_core.sources import WebhookNotSupported, WebhookRejected

__all__ = ["WebhookAck", "operations"]

logger = logging.getLogger("metrichub.api.webhooks")

operations = Operations("webhooks")


class WebhookAck(BaseModel):
    source: str
    delivery: str | None
    duplicate: bool
    events: int


@operations.route(
    "POST",
    "/webhooks/{source_id}",
    summary="Receive a webhook",
    response=WebhookAck,
    body_required=False,
    errors=("not_found", "unauthorized", "validation_error"),
    path_params={"source_id": "The configured source the delivery is for."},
)
async def receive_webhook(request: Request) -> Response:
    """Authenticated by the source's own signature (no bearer token). 404 when the source is unknown
    or takes no webhooks; 401 when the signature is wrong (nothing stored). A redelivered id
    (`X-GitHub-Delivery`, GitLab's `Idempotency-Key`, `X-MetricHub-Delivery`...) is acknowledged once more
    without storing anything again (`duplicate: true`): ids are remembered in the storage, by every worker
    and across restarts, for `[api] webhook_delivery_seconds` (a week), the newest `webhook_delivery_max_ids`
    (100,000). A replay under a new id cannot rewind data either: an older version of an event never
    replaces a newer one. The plugin parses the delivery with the state its source's last successful
    collection saved (read-only).
    """
    ctx = context(request)
    source_id = request.path_params["source_id"]
    entry = ctx.access.source(source_id)
    if entry is None or not entry.webhooks:
        reason = "is not configured" if entry is None else "takes no webhooks"
        raise ApiError("not_found", f"Source {source_id!r} {reason}.")
    if entry.fault is not None:  # a 5xx: the sender retries later instead of disabling the hook
        raise ApiError("internal_error", f"Source {source_id!r} cannot be used: {entry.fault}")
    body = await request.body()
    source = ctx.access.webhook_source(source_id)
    headers = request.headers
    try:
        source.verify_webhook(headers, body)
    except WebhookNotSupported:
        raise ApiError("not_found", f"Source {source_id!r} takes no webhooks.") from None
    except Exception as exc:  # fail closed: whatever the plugin raised, the delivery is not authentic
        ctx.metrics.webhook_deliveries.labels(source_id, "rejected").inc()
        reason = "bad signature" if isinstance(exc, WebhookRejected) else f"verify_webhook raised {type(exc).__name__}"
        logger.warning("webhook for %s rejected: %s (trace_id=%s)", source_id, reason, trace_id_of(request))
        raise ApiError("unauthorized", "The webhook signature does not verify; nothing was stored.") from None
    delivery = delivery_id(headers)
    await ctx.hub.open()  # the ids live in the storage (a no-op once the app has started)
    # Claimed before it is processed, atomically in the storage: of two workers receiving one id
    # at once, one processes it and the other answers "duplicate".
    if delivery is not None and not await ctx.deliveries.claim_delivery(
        source_id, delivery, at=datetime.now(UTC), retention=ctx.settings.delivery_retention
    ):
        ctx.metrics.webhook_deliveries.labels(source_id, "duplicate").inc()
        return ok(request, WebhookAck(source=source_id, delivery=delivery, duplicate=True, events=0))
    try:
        stored = await _store(ctx, source_id, headers, body)
    except BaseException:
        if delivery is not None:  # not processed: its redelivery must be
            await _release(ctx, source_id, delivery)
        raise
    ctx.metrics.webhook_deliveries.labels(source_id, "stored" if stored else "ignored").inc()
    return ok(request, WebhookAck(source=source_id, delivery=delivery, duplicate=False, events=stored))


async def _store(ctx: ApiContext, source_id: str, headers: Headers, body: bytes) -> int:
    """Parse a verified delivery with its source's plugin and store its events; how many were stored."""
    parser = await ctx.access.webhook_parser(source_id)  # the stored state, read only once the delivery verifies
    try:
        events = parser.parse_webhook(headers, body)
    except WebhookRejected as exc:
        ctx.metrics.webhook_deliveries.labels(source_id, "invalid").inc()
        raise ApiError("validation_error", f"The delivery cannot be used: {exc}") from None
    except ValidationError as exc:
        ctx.metrics.webhook_deliveries.labels(source_id, "invalid").inc()
        details = field_errors(exc.errors(include_input=False, include_url=False))
        raise ApiError("validation_error", "The delivery holds invalid events.", details) from None
    try:
        refuse_nul_in_events(events, indexed=True, message="The delivery holds NUL characters; nothing was stored.")
    except ApiError:
        ctx.metrics.webhook_deliveries.labels(source_id, "invalid").inc()
        raise
    stored = await ctx.hub.ingest(events) if events else 0  # the cache is emptied by the app's ingest observer
    if stored:
        for event in events:
            ctx.metrics.events_ingested.labels(event.kind, "webhook").inc()
    return stored


async def _release(ctx: ApiContext, source_id: str, delivery: str) -> None:
    try:
        await ctx.deliveries.release_delivery(source_id, delivery)
    except Exception as exc:  # the error that stopped the delivery is the one to answer with
        logger.warning("webhook delivery %r of %s stays remembered: %s", delivery, source_id, exc)
