"""Per-key token buckets, in memory: `burst` requests at once, refilled at `per_minute` requests a minute.

In memory means per server process: with several workers each one counts on its own, so the effective
limit is the configured one times the number of processes.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimit:
    per_minute: int
    burst: int

    def __post_init__(self) -> None:
        if self.per_minute < 1 or self.burst < 1:
            raise ValueError(f"rate limits must be >= 1, got per_minute={self.per_minute}, burst={self.burst}")


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    """Thread-safe token buckets keyed by name; a bucket starts full."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(self, name: str, limit: RateLimit) -> float:
        """Take one token from `name`'s bucket: 0.0 when allowed, else the seconds until a token is back."""
        rate = limit.per_minute / 60.0
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(name)
            if bucket is None:
                bucket = self._buckets[name] = _Bucket(tokens=float(limit.burst), updated=now)
            bucket.tokens = min(float(limit.burst), bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / rate


def retry_after_seconds(wait: float) -> int:
    """The `Retry-After` value for a wait: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(wait))
