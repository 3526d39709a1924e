"""A global limit on the LLM endpoint, shared by every worker through Redis.

Two limits, both optional: requests per minute (GCRA: requests are spaced at least
60/rpm seconds apart, by Redis's clock, so no minute ever holds more than ``rpm``), and
concurrent calls (a semaphore whose slots expire, so a killed worker cannot leak one). A 429
that escapes the SDK's own retries pauses every worker for its ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from typing import TYPE_CHECKING

from schemas.result import EndpointKind
from service.errors import ModelRateLimitedError
from service.llm.port import LLM, Completion, CompletionRequest

if TYPE_CHECKING:
    from redis import Redis

_PREFIX = "draftmark:llm:"

# KEYS[1] = theoretical arrival time (ms); ARGV[1] = interval ms. Returns ms to wait (0: go).
_GCRA = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat > now then return tat - now end
redis.call('SET', KEYS[1], tat + tonumber(ARGV[1]), 'PX', tonumber(ARGV[1]) * 2 + 1000)
return 0
"""

# KEYS[1] = holders zset (score: expiry ms); ARGV = holder, limit, ttl ms. Returns 1 if acquired.
_ACQUIRE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + 1000)
  return 1
end
return 0
"""

_POLL_S = 0.02


class RedisLimiter:
    """Requests-per-minute and concurrency limits kept in Redis, for every process that shares it."""

    def __init__(
        self, redis: Redis, *, requests_per_minute: int, max_concurrency: int, slot_ttl_s: float, name: str = "default"
    ) -> None:
        self._redis = redis
        self._rpm = requests_per_minute
        self._max_concurrency = max_concurrency
        self._slot_ttl_ms = int(slot_ttl_s * 1000)
        self._rate_key = f"{_PREFIX}{name}:rate"
        self._slots_key = f"{_PREFIX}{name}:slots"
        self._pause_key = f"{_PREFIX}{name}:pause"
        self._gcra = redis.register_script(_GCRA)
        self._acquire = redis.register_script(_ACQUIRE)

    async def acquire(self) -> str | None:
        """Wait for a concurrency slot, then for the rate; the slot's token (release it), or None."""
        token = None
        if self._max_concurrency:
            token = uuid.uuid4().hex
            while not await asyncio.to_thread(
                self._acquire, keys=[self._slots_key], args=[token, self._max_concurrency, self._slot_ttl_ms]
            ):
                await asyncio.sleep(_POLL_S)
        try:
            while True:
                pause_ms = int(await asyncio.to_thread(self._redis.pttl, self._pause_key))
                if pause_ms > 0:
                    await asyncio.sleep(pause_ms / 1000)
                    continue
                if not self._rpm:
                    break
                wait_ms = int(
                    await asyncio.to_thread(self._gcra, keys=[self._rate_key], args=[math.ceil(60_000 / self._rpm)])
                )
                if wait_ms == 0:
                    break
                await asyncio.sleep(wait_ms / 1000)
        except BaseException:
            await self.release(token)
            raise
        return token

    async def release(self, token: str | None) -> None:
        """Give the slot back."""
        if token is not None:
            await asyncio.to_thread(self._redis.zrem, self._slots_key, token)

    async def pause(self, seconds: float) -> None:
        """Hold every worker's next request for ``seconds`` (the endpoint's Retry-After)."""
        await asyncio.to_thread(self._redis.set, self._pause_key, "1", px=max(1, int(seconds * 1000)))


class RateLimitedLLM:
    """An LLM whose calls pass the shared limiter first; the port is unchanged for the pipeline."""

    def __init__(self, inner: LLM, limiter: RedisLimiter) -> None:
        self._inner = inner
        self._limiter = limiter

    @property
    def model_id(self) -> str:
        """The wrapped model's name."""
        return self._inner.model_id

    @property
    def endpoint_kind(self) -> EndpointKind:
        """The wrapped model's kind."""
        return self._inner.endpoint_kind

    @property
    def indicative_only(self) -> bool:
        """The wrapped model's flag."""
        return self._inner.indicative_only

    async def complete(self, request: CompletionRequest) -> Completion:
        """Wait for the limits, then ask the wrapped model."""
        token = await self._limiter.acquire()
        try:
            return await self._inner.complete(request)
        except ModelRateLimitedError as exc:
            await self._limiter.pause(exc.retry_after or 30.0)
            raise
        finally:
            await self._limiter.release(token)
