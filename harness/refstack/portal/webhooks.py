"""Webhook enqueueing and the delivery loop (contract sections 3.8, 9.2, 14.26).

Owns the two DB paths webhooks add to VoxBento's load: ``enqueue`` (one session per emitted event,
reading subscriptions and inserting one delivery row per match; DB errors are logged and swallowed,
contract 9.3) and the background loop started by the app lifespan, which about once per second opens a
session and runs an ``UPDATE ... RETURNING`` on ``webhook_deliveries`` even when nothing is pending,
so on SQLite it competes for the write lock forever (contract 14.26).
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from .models import WebhookDelivery, WebhookSubscription

log = logging.getLogger(__name__)

# Contract 14.26: the loop polls about once per second and backs off 5 s on "database is locked".
POLL_INTERVAL_S = 1.0
LOCKED_BACKOFF_S = 5.0
DELIVERY_TIMEOUT_S = 10.0
MAX_ATTEMPTS = 5


class DeliveryStatus(enum.StrEnum):
    """``webhook_deliveries.status``: pending -> delivering (claimed) -> delivered | pending (retry) | failed."""

    PENDING = "pending"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    FAILED = "failed"


def _first_line(exc: BaseException) -> str:
    """SQLAlchemy puts the statement on later lines; one short line keeps the log readable."""
    return (str(exc).splitlines() or [""])[0][:300]


def _wants(subscription: WebhookSubscription, event_type: str) -> bool:
    types = {t.strip() for t in subscription.event_types.split(",") if t.strip()}
    return not types or event_type in types or "*" in types


async def enqueue(app: FastAPI, event_type: str, payload: dict[str, Any]) -> None:
    """Contract 9.2/9.3: one DB session; reads the subscriptions and queues a delivery per match.
    Never raises: a locked or exhausted DB is logged and the caller's flow goes on."""
    try:
        async with app.state.db.get_session() as session:
            subscriptions = (await session.scalars(select(WebhookSubscription).where(WebhookSubscription.is_active.is_(True)))).all()
            body = json.dumps({"event": event_type, "data": payload})
            for sub in subscriptions:
                if _wants(sub, event_type):
                    session.add(WebhookDelivery(event_type=event_type, payload=body, subscription_id=sub.id))
    except Exception as exc:  # contract 9.3: webhook enqueue catches and logs DB errors
        log.error("Webhook enqueue failed for %s: %s: %s", event_type, exc.__class__.__name__, _first_line(exc))


async def _claim_pending(app: FastAPI) -> list[tuple[int, int | None, str]]:
    """Contract 14.26: the UPDATE runs on every poll, matching rows or not (it takes the SQLite write lock)."""
    async with app.state.db.get_session() as session:
        result = await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.status == DeliveryStatus.PENDING)
            .values(status=DeliveryStatus.DELIVERING, attempts=WebhookDelivery.attempts + 1)
            .returning(WebhookDelivery.id, WebhookDelivery.subscription_id, WebhookDelivery.payload)
        )
        return [(row[0], row[1], row[2]) for row in result.all()]


async def _deliver(app: FastAPI, delivery_id: int, subscription_id: int | None, payload: str) -> None:
    async with app.state.db.get_session() as session:
        sub = await session.get(WebhookSubscription, subscription_id) if subscription_id is not None else None
        target = sub.target_url if sub is not None else None
    error = ""
    if target is None:
        error = "subscription gone"
    else:
        try:
            resp = await app.state.media.http.post(
                target, content=payload, headers={"Content-Type": "application/json"}, timeout=DELIVERY_TIMEOUT_S
            )
            if resp.status_code >= 300:
                error = f"HTTP {resp.status_code}"
        except httpx.HTTPError as exc:
            error = exc.__class__.__name__
    async with app.state.db.get_session() as session:
        row = await session.get(WebhookDelivery, delivery_id)
        if row is None:
            return
        row.last_error = error
        if not error:
            row.status = DeliveryStatus.DELIVERED
        elif row.attempts >= MAX_ATTEMPTS:
            row.status = DeliveryStatus.FAILED
        else:
            row.status = DeliveryStatus.PENDING


async def _run(app: FastAPI) -> None:
    while True:
        delay_s = POLL_INTERVAL_S
        try:
            for delivery in await _claim_pending(app):
                await _deliver(app, *delivery)
        except OperationalError as exc:
            if "database is locked" in str(exc):
                # Contract 14.26: under write contention the loop logs and backs off.
                log.error("Webhook loop: database is locked; backing off %.0f s", LOCKED_BACKOFF_S)
                delay_s = LOCKED_BACKOFF_S
            else:
                log.error("Webhook loop iteration failed: %s", _first_line(exc))
        except Exception as exc:  # a failing iteration (e.g. pool timeout) must not end the loop
            # One line per failure: under pool exhaustion this fires every second.
            log.error("Webhook loop iteration failed: %s: %s", exc.__class__.__name__, _first_line(exc))
        await asyncio.sleep(delay_s)


def start_loop(app: FastAPI) -> asyncio.Task:
    """Start the delivery loop; the lifespan cancels the returned task at shutdown."""
    return asyncio.get_running_loop().create_task(_run(app), name="webhook-delivery-loop")
