"""Token-bucket rate limits per principal and per client IP.

Each key gets a bucket of `burst` tokens refilled at `rate` per second; a request takes
one. An empty bucket answers how long until the next token (`Retry-After`).

* `RateLimiter`: in memory, for one process.
* `RedisRateLimiter`: the same bucket kept in Redis by one atomic script, shared by every
  replica (`ESIM_GATEWAY_RATE_LIMIT_REDIS_URL`).
* `FailedAuthentications`: a bucket per client address that only failed authentications
  take from; a client whose bucket is empty is refused before its credentials are read.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "FailedAuthentications",
    "Limiter",
    "RateLimiter",
    "RedisRateLimiter",
    "TooManyFailures",
    "limiter_for",
    "retry_after_header",
]

MAX_KEYS = 100_000


def retry_after_header(wait: float) -> str:
    return str(max(1, math.ceil(wait)))


class Limiter(Protocol):
    async def take(self, key: str) -> float:
        """0.0 when allowed; else the seconds to wait before the next try."""
        ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take_now(self, key: str) -> float:
        now = self.clock()
        bucket = self._buckets.pop(key, None) or _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        self._buckets[key] = bucket  # most recently used last
        if len(self._buckets) > MAX_KEYS:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    async def take(self, key: str) -> float:
        return self.take_now(key)

    async def aclose(self) -> None:
        return None

    retry_after_header = staticmethod(retry_after_header)


# KEYS[1] = bucket; ARGV = rate, burst, now (seconds), ttl (seconds). Returns the wait.
_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1]) or burst
local updated = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return tostring(wait)
"""


class RedisRateLimiter:
    """The bucket in Redis, updated atomically by a Lua script (one round trip)."""

    def __init__(self, url: str, rate: float, burst: int, *, prefix: str = "esim-gw:rl:") -> None:
        from redis.asyncio import Redis

        self._redis: Any = Redis.from_url(url)
        self._script: Any = self._redis.register_script(_SCRIPT)
        self.rate = rate
        self.burst = burst
        self.prefix = prefix
        self._ttl = max(1, math.ceil(burst / rate) + 1)

    async def take(self, key: str) -> float:
        wait = await self._script(
            keys=[self.prefix + key], args=[self.rate, self.burst, time.time(), self._ttl]
        )
        return float(wait)

    async def aclose(self) -> None:
        await self._redis.aclose()


def limiter_for(redis_url: str | None, rate: float, burst: int, name: str) -> Limiter:
    """Buckets in Redis under `esim-gw:<name>:` when a URL is given (shared by every
    replica), else in this process."""
    if redis_url:
        return RedisRateLimiter(redis_url, rate, burst, prefix=f"esim-gw:{name}:")
    return RateLimiter(rate, burst)


class TooManyFailures(Exception):
    """A client past its budget of failed authentications: 429, `Retry-After`."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class FailedAuthentications:
    """A budget of failed authentications (a wrong API key or JWT) per client address,
    kept in a `Limiter` (in Redis: shared by every replica).

    Past it, the client is refused (429) before its credentials are checked, until its
    bucket has a token again: a right guess then gets the same answer as a wrong one.
    That refusal is remembered here, from the bucket's own answer, so a request that
    authenticates costs no round trip to Redis; another replica learns of it at the
    client's first failure there (one more verdict per replica at most).
    """

    def __init__(self, limiter: Limiter, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._limiter = limiter
        self._clock = clock
        #: client address -> when it may try again (this process' clock)
        self._refused: OrderedDict[str, float] = OrderedDict()

    def refused(self, client: str) -> float:
        """Seconds until `client` may authenticate again; 0.0 when it may now."""
        until = self._refused.get(client)
        if until is None:
            return 0.0
        wait = until - self._clock()
        if wait <= 0:
            del self._refused[client]
            return 0.0
        return wait

    async def failed(self, client: str) -> float:
        """Count a failure of `client`: 0.0 while within its budget, else the seconds
        until it may try again (it is refused until then)."""
        wait = await self._limiter.take(f"ip:{client}")
        if wait:
            self._refused[client] = self._clock() + wait
            self._refused.move_to_end(client)
            if len(self._refused) > MAX_KEYS:
                self._refused.popitem(last=False)
        return wait

    async def aclose(self) -> None:
        await self._limiter.aclose()
