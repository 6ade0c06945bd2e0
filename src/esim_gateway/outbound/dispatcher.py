"""Delivering the outbox: a background loop in every replica, never on a request's path.

Each pass claims due deliveries (`OutboundStore.claim_due`: leased, in order per subject)
for the free slots and starts each on its own: the URL checked again (DNS may have moved
it into a private network since it was registered), the signed body POSTed, the outcome
recorded. A failure is retried after the next delay of the schedule; past the last one
the delivery is FAILED and waits for `redeliverWebhook`. A 2xx answer is success;
anything else, a timeout or a refused connection is a failure.

Receivers do not wait on one another: at most `per_endpoint` deliveries are in flight to
one endpoint and `concurrency` in all, and a pass starts whenever something is enqueued
or a delivery ends, not when a batch has ended, so a receiver that hangs for the whole
attempt `timeout` holds up only its own deliveries. A claim is renewed while its
delivery is in flight, so an attempt that outlives the lease (a slow DNS answer, a
receiver dribbling its headers) is not claimed by another replica meanwhile.

Retention: when a pass finds nothing due, and at most every `prune_every` seconds, the
loop deletes one small batch of deliveries delivered longer than `retention` ago (the
next batch right away when that one was full), so a table grown over months drains
without one long transaction holding up deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter
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
        concurrency: int = 16,
        per_endpoint: int = 4,
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
        #: a claim outlives one attempt (timeout) by a margin, and is renewed every third
        #: of it while the attempt runs; a claim left unrenewed is due again
        self.lease = timeout + 20.0
        self.concurrency = concurrency
        self.per_endpoint = per_endpoint
        #: endpoint id -> deliveries in flight to it
        self._in_flight: Counter[str] = Counter()
        self._deliveries: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._background = BackgroundLoop("webhook-dispatcher", self._loop)

    def wake(self) -> None:
        """Something may have been enqueued: run a pass now rather than at the interval."""
        self._wake.set()

    def start(self) -> None:
        self._background.start()

    async def stop(self) -> None:
        await self._background.stop()
        # an attempt cut short is not recorded: its claim runs out and it is sent again
        for task in list(self._deliveries):
            task.cancel()
        if self._deliveries:
            await asyncio.wait(self._deliveries)

    async def run_once(self) -> int:
        """One pass, waited for: deliver what is due now, as far as slots are free.
        Returns how many attempts were made."""
        started = await self._start_due()
        if started:
            await asyncio.wait(started)
        return len(started)

    async def _start_due(self) -> list[asyncio.Task[None]]:
        """Claim what is due for the free slots and start each delivery on its own."""
        free = self.concurrency - self._in_flight.total()
        if free <= 0:
            return []
        due = await self.store.claim_due(
            self.clock(),
            limit=min(self.batch, free),
            lease=self.lease,
            per_endpoint=self.per_endpoint,
            in_flight=dict(self._in_flight),
        )
        started = []
        for delivery in due:
            self._in_flight[delivery.endpoint_id] += 1
            task = asyncio.create_task(self._deliver(delivery), name=f"webhook-{delivery.id}")
            self._deliveries.add(task)
            task.add_done_callback(functools.partial(self._ended, delivery.endpoint_id))
            started.append(task)
        return started

    def _ended(self, endpoint_id: str, task: asyncio.Task[None]) -> None:
        self._deliveries.discard(task)
        self._in_flight[endpoint_id] -= 1
        if self._in_flight[endpoint_id] <= 0:
            del self._in_flight[endpoint_id]
        # a slot is free, and the next delivery of the same subject may be due now
        self._wake.set()

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
        attempt = asyncio.ensure_future(self._attempt(delivery))
        keeper = asyncio.ensure_future(self._keep_claim(delivery))
        try:
            await asyncio.wait({attempt, keeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (attempt, keeper):
                task.cancel()  # nothing when done already
            await asyncio.wait({attempt, keeper})
        if attempt.cancelled():
            log.warning(
                "webhook delivery %s lost its claim while in flight (its renewal found it"
                " taken); the attempt was abandoned",
                delivery.id,
            )
            return
        if (unexpected := attempt.exception()) is not None:
            # a fault of ours, not the receiver's: left to the claim's end, then sent again
            log.error("webhook delivery %s failed", delivery.id, exc_info=unexpected)
            return
        status_code, error = attempt.result()
        try:
            await self._record(delivery, status_code, error)
        except Exception:  # the claim runs out and it is sent again: at least once
            log.exception("recording webhook delivery %s failed", delivery.id)

    async def _keep_claim(self, delivery: DueDelivery) -> None:
        """Renew the delivery's claim every third of the lease; returns when it was lost."""
        leased_until = delivery.leased_until
        while True:
            await asyncio.sleep(self.lease / 3)
            until = self.clock() + timedelta(seconds=self.lease)
            try:
                held = await self.store.renew_claim(delivery.id, leased_until, until)
            except Exception:  # the database may be back before the claim runs out
                log.warning("renewing the claim of webhook delivery %s failed", delivery.id)
                continue
            if not held:
                return
            leased_until = until

    async def _attempt(self, delivery: DueDelivery) -> tuple[int | None, str | None]:
        """(status code, error): error None means delivered."""
        status_code: int | None = None
        error: str | None = None
        try:
            # the whole attempt, not each step of it (httpx's timeout): a receiver that
            # answers a byte at a time holds its slot no longer than one that hangs
            async with asyncio.timeout(self.timeout):
                addresses = await self.policy.check(delivery.url)
                status_code = await self._post(delivery, addresses)
            if not 200 <= status_code < 300:
                error = f"receiver answered {status_code}"
        except UrlNotAllowed as exc:
            error = f"url not allowed: {exc.reason}"
        except (httpx.TimeoutException, TimeoutError):
            error = "timed out"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: could not reach the receiver"
        return status_code, error

    async def _record(
        self, delivery: DueDelivery, status_code: int | None, error: str | None
    ) -> None:
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
                started = await self._start_due()
                # deliveries first: pruning only fills a pass that found nothing due
                more_to_prune = not started and await self._prune_when_idle()
            except Exception:  # the database may be away for a while; try again later
                log.exception("webhook dispatch pass failed")
                more_to_prune = False
            if more_to_prune:
                continue
            # until something is enqueued or a delivery ends (a slot free, the next of
            # its subject due); a timeout scope, not wait_for: no task per idle wait
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
            self._wake.clear()
