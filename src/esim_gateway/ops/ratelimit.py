"""Token-bucket rate limits per principal and per client IP.

Each key gets a bucket of `burst` tokens refilled at `rate` per second; a request takes
one. An empty bucket answers how long until the next token (`Retry-After`).

* `RateLimiter`: in memory, for one process.
* `RedisRateLimiter`: the same bucket kept in Redis by one atomic script, shared by every
  replica (`ESIM_GATEWAY_RATE_LIMIT_REDIS_URL`).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Limiter", "RateLimiter", "RedisRateLimiter", "retry_after_header"]

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
