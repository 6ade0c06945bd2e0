"""Delivering the outbox: a background loop in every replica, never on a request's path.

Each pass claims due deliveries (`OutboundStore.claim_due`: leased, in order per subject),
checks the receiver's URL again (DNS may have moved it into a private network since it
was registered), POSTs the signed body, and records the outcome. A failure is retried
after the next delay of the schedule; past the last one the delivery is FAILED and waits
for `redeliverWebhook`. A 2xx answer is success; anything else, a timeout or a refused
connection is a failure.

Retention: when a pass finds nothing due, and at most every `prune_every` seconds, the
loop deletes one small batch of deliveries delivered longer than `retention` ago (the
next batch right away when that one was full), so a table grown over months drains
without one long transaction holding up deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import httpx
import orjson

from esim_gateway.config import DEFAULT_WEBHOOK_RETRY_SCHEDULE
from esim_gateway.errors import UrlNotAllowed
from esim_gateway.ledger.outbox import DueDelivery, OutboundStore
from esim_gateway.ops.background import BackgroundLoop
from esim_gateway.outbound.signing import signature_header
from esim_gateway.outbound.urls import UrlPolicy

__all__ = ["WebhookDispatcher"]

log = logging.getLogger("esim_gateway.outbound")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class WebhookDispatcher:
    def __init__(
        self,
        store: OutboundStore,
        client: httpx.AsyncClient,
        policy: UrlPolicy,
        *,
        retry_schedule: Sequence[float] = DEFAULT_WEBHOOK_RETRY_SCHEDULE,
        interval: float = 2.0,
        timeout: float = 10.0,
        batch: int = 50,
        concurrency: int = 8,
        retention: timedelta | None = None,
        prune_batch: int = 100,
        prune_every: float = 60.0,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.store = store
        self.client = client
        self.policy = policy
        self.retry_schedule = tuple(retry_schedule)
        self.interval = interval
        self.timeout = timeout
        self.batch = batch
        self.clock = clock
        #: None keeps every delivery forever
        self.retention = retention
        self.prune_batch = prune_batch
        self.prune_every = prune_every
        self._next_prune = 0.0  # time.monotonic() of the next batch
        #: a claim outlives one attempt (timeout) by a margin; then it is due again
        self.lease = timeout + 20.0
        self._limit = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._background = BackgroundLoop("webhook-dispatcher", self._loop)

    def wake(self) -> None:
        """Something may have been enqueued: run a pass now rather than at the interval."""
        self._wake.set()

    def start(self) -> None:
        self._background.start()

    async def stop(self) -> None:
        await self._background.stop()

    async def run_once(self) -> int:
        """One pass: deliver what is due now. Returns how many attempts were made."""
        now = self.clock()
        due = await self.store.claim_due(now, limit=self.batch, lease=self.lease)
        if due:
            await asyncio.gather(*(self._deliver(d) for d in due))
        return len(due)

    async def prune_once(self) -> int:
        """Delete one batch of deliveries delivered before the retention cutoff; returns
        how many went."""
        if self.retention is None:
            return 0
        return await self.store.prune(self.clock() - self.retention, limit=self.prune_batch)

    async def _prune_when_idle(self) -> bool:
        """One batch when its time has come; True when the batch was full (more wait)."""
        if self.retention is None or time.monotonic() < self._next_prune:
            return False
        pruned = await self.prune_once()
        full = pruned >= self.prune_batch
        self._next_prune = time.monotonic() + (0.0 if full else self.prune_every)
        return full

    async def _deliver(self, delivery: DueDelivery) -> None:
        async with self._limit:
            status_code: int | None = None
            error: str | None = None
            try:
                addresses = await self.policy.check(delivery.url)
                status_code = await self._post(delivery, addresses)
                if not 200 <= status_code < 300:
                    error = f"receiver answered {status_code}"
            except UrlNotAllowed as exc:
                error = f"url not allowed: {exc.reason}"
            except httpx.TimeoutException:
                error = "timed out"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: could not reach the receiver"
            at = self.clock()
            delivered = error is None
            retry_at = None
            if not delivered and delivery.round_attempts < len(self.retry_schedule):
                retry_at = at + timedelta(seconds=self.retry_schedule[delivery.round_attempts])
            await self.store.record_attempt(
                delivery.id,
                at,
                delivered=delivered,
                status_code=status_code,
                error=error,
                retry_at=retry_at,
            )
            if not delivered:
                log.info(
                    "webhook delivery %s failed (%s); %s",
                    delivery.id,
                    error,
                    f"next attempt at {retry_at.isoformat()}" if retry_at else "giving up",
                )

    async def _post(self, delivery: DueDelivery, addresses: list[str]) -> int:
        body = orjson.dumps(delivery.payload)
        timestamp = int(self.clock().timestamp())
        headers = {
            "content-type": "application/json",
            "webhook-id": delivery.message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(
                delivery.secrets, delivery.message_id, timestamp, body
            ),
        }
        url = httpx.URL(delivery.url)
        extensions: dict[str, str] = {}
        if addresses:
            # connect to the address just checked, not to the name: it could resolve into
            # a private network by now; TLS still checks the certificate for the name
            headers["host"] = url.netloc.decode("ascii")
            extensions["sni_hostname"] = url.host
            url = url.copy_with(host=addresses[0])
        # streamed and never read: a receiver's answer body is not ours to buffer
        async with self.client.stream(
            "POST",
            url,
            content=body,
            headers=headers,
            timeout=self.timeout,
            extensions=extensions,
        ) as response:
            return response.status_code

    async def _loop(self) -> None:
        while True:
            try:
                attempted = await self.run_once()
                # deliveries first: pruning only fills a pass that found nothing due
                more_to_prune = not attempted and await self._prune_when_idle()
            except Exception:  # the database may be away for a while; try again later
                log.exception("webhook dispatch pass failed")
                attempted, more_to_prune = 0, False
            if attempted or more_to_prune:
                continue  # a delivery done may have unblocked the next one of its subject
            # a timeout scope, not wait_for: no task is spawned per idle wait
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
            self._wake.clear()
