"""Access control for `/v1/*`: who is calling (401), whether they may (403), and not too often (429).

Keys are required exactly when at least one is configured (CLINQA_AUTH__KEYS or auth.keys_file); with
none the server is open (developer mode) and says so once at start-up. A key comes in `X-API-Key` or
`Authorization: Bearer <key>`. Keys are never logged: the key's `name` is, and it is put on
`request.state.api_key_name` for the audit log (None when auth is off).
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.api.errors import ApiError, ErrorBody, request_id_of
from app.api.keys import configured_keys, hash_key
from app.api.ratelimit import RateLimit, TokenBucketLimiter, retry_after_seconds
from app.config import ApiKeyEntry, AuthSettings

log = logging.getLogger(__name__)

_API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An API key from `clinqa keys create` (or your administrator)."
)
_BEARER = HTTPBearer(auto_error=False, description="The same API key, sent as `Authorization: Bearer <key>`.")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="clinqa"'}

_401 = {401: {"model": ErrorBody, "description": "API key missing (`missing_api_key`) or unknown (`invalid_api_key`)"}}
_403 = {403: {"model": ErrorBody, "description": "The key is valid but not an admin key (`admin_key_required`)"}}
_429 = {429: {"model": ErrorBody, "description": "The key's rate limit is spent (`rate_limited`); see Retry-After"}}


class ApiKeyAuthenticator:
    """The configured keys and their token buckets; `enabled` is False (everything open) with no keys."""

    def __init__(
        self, entries: Sequence[ApiKeyEntry], settings: AuthSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries = tuple(entries)
        self._default = RateLimit(settings.rate_limit_per_minute, settings.rate_limit_burst)
        self._limiter = TokenBucketLimiter(clock)

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> ApiKeyAuthenticator:
        """Read the keys (KeyFileError when the keys file is missing or malformed) and log the mode once."""
        auth = cls(configured_keys(settings), settings)
        if not auth.enabled:
            log.warning(
                "no API keys configured: /v1/* is open to anyone who can reach the server (developer mode); "
                "create keys with `clinqa keys create NAME --file PATH` and set CLINQA_AUTH__KEYS_FILE",
                extra={"keys_file": str(settings.keys_file) if settings.keys_file else None},
            )
        else:
            admins = sum(e.role == "admin" for e in auth._entries)
            log.info("API keys required on /v1/*", extra={"keys": len(auth._entries), "admin_keys": admins})
            if not admins:
                log.warning("no admin key configured: /v1/admin/* refuses every key")
        return auth

    @property
    def enabled(self) -> bool:
        return bool(self._entries)

    def identify(self, key: str | None) -> ApiKeyEntry:
        """The entry whose hash matches `key`; ApiError 401 when it is missing or matches none."""
        if not key:
            raise ApiError(
                401,
                "missing_api_key",
                "this endpoint needs an API key: send it as `X-API-Key: <key>` or `Authorization: Bearer <key>`",
                headers=_CHALLENGE,
            )
        digest = hash_key(key)
        found: ApiKeyEntry | None = None
        for entry in self._entries:  # every entry is compared, each in constant time: no early exit to time
            if hmac.compare_digest(entry.hash, digest):
                found = entry
        if found is None:
            raise ApiError(401, "invalid_api_key", "the API key is not recognised", headers=_CHALLENGE)
        return found

    def limit_of(self, entry: ApiKeyEntry) -> RateLimit:
        return RateLimit(
            entry.rate_limit_per_minute or self._default.per_minute,
            entry.rate_limit_burst or self._default.burst,
        )

    def check_rate(self, entry: ApiKeyEntry) -> None:
        """Spend one of the key's tokens; ApiError 429 with Retry-After when none is left."""
        limit = self.limit_of(entry)
        wait = self._limiter.acquire(entry.name, limit)
        if wait > 0:
            seconds = retry_after_seconds(wait)
            raise ApiError(
                429,
                "rate_limited",
                f"rate limit of {limit.per_minute} requests per minute (burst {limit.burst}) reached for this key; "
                f"retry in {seconds} s",
                headers={"Retry-After": str(seconds)},
            )


def _refused(request: Request, exc: ApiError) -> ApiError:
    log.warning(
        "request refused",
        extra={
            "request_id": request_id_of(request),
            "path": request.url.path,
            "code": exc.code,
            "api_key_name": getattr(request.state, "api_key_name", None),
        },
    )
    return exc


async def require_api_key(
    request: Request,
    api_key: str | None = Security(_API_KEY_HEADER),
    bearer: HTTPAuthorizationCredentials | None = Security(_BEARER),
) -> ApiKeyEntry | None:
    """The calling key (rate-limited), or None when auth is off; 401/429 otherwise."""
    auth: ApiKeyAuthenticator = request.app.state.auth
    request.state.api_key_name = None
    if not auth.enabled:
        return None
    try:
        entry = auth.identify(api_key or (bearer.credentials if bearer else None))
        request.state.api_key_name = entry.name
        auth.check_rate(entry)
    except ApiError as exc:
        raise _refused(request, exc) from None
    return entry


async def require_admin_key(
    request: Request, entry: ApiKeyEntry | None = Depends(require_api_key)
) -> ApiKeyEntry | None:
    """As `require_api_key`, and the key must have role admin (403 otherwise)."""
    if entry is not None and entry.role != "admin":
        raise _refused(
            request,
            ApiError(403, "admin_key_required", f"this endpoint needs an admin key; {entry.name!r} is a user key"),
        )
    return entry


def route_access(prefix: str) -> dict[str, Any]:
    """`include_router` arguments for a router by its prefix: /v1/admin needs an admin key, the rest of /v1 a
    key; everything else (health, the page, the widget, docs, metrics) is open."""
    if prefix == "/v1/admin" or prefix.startswith("/v1/admin/"):
        return {"dependencies": [Depends(require_admin_key)], "responses": {**_401, **_403, **_429}}
    if prefix == "/v1" or prefix.startswith("/v1/"):
        return {"dependencies": [Depends(require_api_key)], "responses": {**_401, **_429}}
    return {}
