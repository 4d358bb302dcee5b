"""The project's one rate-limit mechanism: REST throttles, socket limits and their headers.

Every limit is a sliding window: at most ``limit`` requests in any ``window`` seconds, counted per
scope and per user (or client IP, or account). A refused request is not counted, so a client
that keeps retrying too early does not push its own retry further away.

The counter lives in the shared cache, so the limit holds across server processes. On Redis a
check is one round trip: a Lua script that drops the requests older than the window, counts the
rest, adds this one if there is room and reads the oldest, all atomically, so two processes
checking at once cannot both take the last place (DRF's own throttle reads and writes a pickled
history: two round trips and a race). Any other cache (the tests' local memory) gets the same
algorithm under a process lock: exact for a per-process cache such as local memory, and the
answer for a cache that is not shared is Redis.

Windows are measured with this process's clock (``time.time``), so frozen-time tests freeze the
limiter too; the server processes of one deployment share a clock closely enough.

Rates are settings named ``<SCOPE>_THROTTLE_RATE`` (docs/settings.md), read at every check, so
``override_settings`` takes effect at once. Syntax: ``<count>/<period>`` with an optional multiple,
``30/min``, ``10/hour``, ``1/5s``, ``100/15min``.
"""

import math
import re
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from rest_framework.throttling import BaseThrottle

from core.exceptions import ApplicationError

if TYPE_CHECKING:  # rest_framework.views reads DEFAULT_THROTTLE_CLASSES, which names this module
    from rest_framework.request import Request
    from rest_framework.views import APIView

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(s|sec|second|m|min|minute|h|hr|hour|d|day)s?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Rate:
    limit: int
    window: int  # seconds

    def __str__(self) -> str:
        return f"{self.limit}/{self.window}s"


def parse_rate(text: str) -> Rate:
    """``"30/min"`` -> Rate(30, 60); ``"1/5s"`` -> Rate(1, 5)."""
    match = _RATE.match(text or "")
    if match is None:
        raise ImproperlyConfigured(f"Not a rate: {text!r} (write e.g. 30/min, 10/hour, 1/5s)")
    count, multiple, unit = match.groups()
    window = int(multiple or 1) * _PERIODS[unit[0].lower()]
    if window <= 0:
        raise ImproperlyConfigured(f"Not a rate: {text!r} (the period must be positive)")
    return Rate(int(count), window)


def rate_setting(name: str) -> Rate:
    value = getattr(settings, name, None)
    if value is None:
        raise ImproperlyConfigured(f"No setting {name} for a rate limit")
    return parse_rate(value)


@dataclass(frozen=True)
class Decision:
    """One check's outcome, and what the ``X-RateLimit-*`` headers and ``Retry-After`` say."""

    allowed: bool
    limit: int
    remaining: int  # requests still allowed now, this one counted
    reset_at: int  # Unix time (s, rounded up) when the oldest counted request leaves the window
    retry_after: int  # seconds until a refused request may be retried; 0 when allowed

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


# KEYS[1]: the scope's sorted set of request times (ms). ARGV: now (ms), window (ms), limit, member.
# Returns {allowed, count, the time of the request whose leaving frees the next place}.
_SLIDING_WINDOW = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  count = count + 1
  allowed = 1
end
if count == 0 then
  return {allowed, 0, now}
end
redis.call('PEXPIRE', KEYS[1], window)
local pivot = 0
if allowed == 0 then
  pivot = math.min(count - limit, count - 1)
end
local entry = redis.call('ZRANGE', KEYS[1], pivot, pivot, 'WITHSCORES')
return {allowed, count, math.floor(tonumber(entry[2]))}
"""

_local_lock = threading.Lock()


def _redis_client(key: str):
    """The redis-py client behind Django's Redis cache, or None for any other cache."""
    backend = getattr(cache, "_cache", None)
    if backend is None or not hasattr(backend, "get_client"):
        return None
    return backend.get_client(key, write=True)


def _count_on_redis(client, key: str, now_ms: int, window_ms: int, limit: int) -> tuple[bool, int, int]:
    member = f"{now_ms}:{secrets.token_hex(6)}"  # two requests in one millisecond are both counted
    allowed, count, pivot = client.eval(_SLIDING_WINDOW, 1, key, now_ms, window_ms, limit, member)
    return bool(allowed), int(count), int(pivot)


def _count_locally(key: str, now_ms: int, window_ms: int, limit: int) -> tuple[bool, int, int]:
    """The script's algorithm on a cache without scripts, under this process's lock."""
    with _local_lock:
        stamps = [stamp for stamp in cache.get(key, []) if stamp > now_ms - window_ms]
        allowed = len(stamps) < limit
        if allowed:
            stamps.append(now_ms)
        if stamps:
            cache.set(key, stamps, timeout=math.ceil(window_ms / 1000))
        else:
            cache.delete(key)
    if not stamps:
        return allowed, 0, now_ms
    return allowed, len(stamps), stamps[0 if allowed else min(len(stamps) - limit, len(stamps) - 1)]


def rate_limit_hit(*, scope: str, ident: str, rate: Rate) -> Decision:
    """Count one request of ``ident`` against ``scope``'s ``rate`` if there is room, and say so."""
    now_ms = int(time.time() * 1000)
    window_ms = rate.window * 1000
    key = f"ratelimit:{scope}:{ident}"
    stored_key = cache.make_and_validate_key(key)  # with the cache's KEY_PREFIX, as the script sees it
    client = _redis_client(stored_key)
    if client is not None:
        allowed, count, pivot = _count_on_redis(client, stored_key, now_ms, window_ms, rate.limit)
    else:
        allowed, count, pivot = _count_locally(key, now_ms, window_ms, rate.limit)
    frees_at = pivot + window_ms  # when the pivot request leaves the window
    return Decision(
        allowed=allowed,
        limit=rate.limit,
        remaining=max(0, rate.limit - count),
        reset_at=math.ceil(frees_at / 1000),
        retry_after=0 if allowed else max(1, math.ceil((frees_at - now_ms) / 1000)),
    )


class RateLimited(ApplicationError):
    """429 ``RATE_LIMITED`` outside DRF's throttles (the socket): ``details.retry_after``."""

    code = "RATE_LIMITED"
    status = 429
    default_message = "Too many requests. Try again later."


def rate_limit_enforce(*, scope: str, ident: str, rate: Rate, error: type[RateLimited] = RateLimited) -> Decision:
    """Count one request, or refuse it with ``error`` carrying when to retry."""
    decision = rate_limit_hit(scope=scope, ident=ident, rate=rate)
    if not decision.allowed:
        raise error(details={"retry_after": decision.retry_after})
    return decision


def throttle_user_scope(scope: str, user: Any) -> Decision:
    """Count one socket request of ``user`` on the counter the REST views of ``scope`` use (rate
    ``<SCOPE>_THROTTLE_RATE``), or raise ``RateLimited``: one limit, REST and socket alike (e.g.
    ``call_initiate`` for ``call.initiate``)."""
    return rate_limit_enforce(scope=scope, ident=str(user.pk), rate=rate_setting(f"{scope.upper()}_THROTTLE_RATE"))


# --- REST ---------------------------------------------------------------------------------------

_DECISIONS = "rate_limit_decisions"


def _record(request: "Request", decision: Decision) -> None:
    """Kept on Django's request, where RateLimitHeadersMiddleware finds it for the response."""
    django_request = getattr(request, "_request", request)
    decisions = getattr(django_request, _DECISIONS, None)
    if decisions is None:
        decisions = []
        setattr(django_request, _DECISIONS, decisions)
    decisions.append(decision)


def deciding(decisions: Iterable[Decision]) -> Decision | None:
    """The decision the headers describe when several limits applied: a refusal (the one with the
    longest wait, which ``Retry-After`` gives), else the limit closest to refusing."""
    return min(
        decisions, key=lambda d: (1, d.remaining, d.limit) if d.allowed else (0, -d.retry_after, 0), default=None
    )


class RateLimitHeadersMiddleware:
    """Adds ``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset`` to every answer of a request a
    throttle counted, allowed or refused (docs/api.md#rate-limits)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        decision = deciding(getattr(request, _DECISIONS, ()))
        if decision is not None:
            for name, value in decision.headers().items():
                if name != "Retry-After" or name not in response:
                    response[name] = value
        return response


class RateThrottle(BaseThrottle):
    """A DRF throttle on the shared counter. Subclasses name the ``scope``, the setting of its
    rate (``<SCOPE>_THROTTLE_RATE`` unless ``rate_setting`` says otherwise) and whom to count."""

    scope = ""
    rate_setting = ""
    decision: Decision | None = None

    def rate(self) -> Rate:
        return rate_setting(self.rate_setting or f"{self.scope.upper()}_THROTTLE_RATE")

    def ident(self, request: "Request", view: "APIView | None") -> str | None:
        """Whom to count; None skips this throttle for the request."""
        raise NotImplementedError

    def allow_request(self, request: "Request", view: "APIView | None") -> bool:
        ident = self.ident(request, view)
        if ident is None:
            return True
        self.decision = rate_limit_hit(scope=self.scope, ident=ident, rate=self.rate())
        _record(request, self.decision)
        return self.decision.allowed

    def wait(self) -> float | None:
        return self.decision.retry_after if self.decision is not None else None


def user_ident(request: Any) -> str | None:
    user = getattr(request, "user", None)
    return str(user.pk) if user is not None and user.is_authenticated else None


class UserRateThrottle(RateThrottle):
    """Per signed-in user; anonymous requests are not counted by it."""

    def ident(self, request: "Request", view: "APIView | None") -> str | None:
        return user_ident(request)


class GeneralRateThrottle(RateThrottle):
    """The default budget of every endpoint: ``USER_THROTTLE_RATE`` per signed-in user (all
    endpoints together), ``ANON_THROTTLE_RATE`` per client IP for anonymous requests."""

    def allow_request(self, request: "Request", view: "APIView | None") -> bool:
        user = user_ident(request)
        if user is not None:
            self.scope, self.rate_setting, ident = "user", "USER_THROTTLE_RATE", user
        else:
            self.scope, self.rate_setting, ident = "anon", "ANON_THROTTLE_RATE", self.get_ident(request)
        self.decision = rate_limit_hit(scope=self.scope, ident=ident, rate=self.rate())
        _record(request, self.decision)
        return self.decision.allowed


def view_scopes(view: "APIView") -> list[str]:
    """The scopes a view is counted under beyond the general budget: its ``throttle_scope`` (a
    name or a list), and those ``THROTTLE_VIEW_SCOPES`` gives its module or class by dotted
    prefix (``"video_calls.apis"``, ``"video_calls.apis.calls.CallInitiateApi"``)."""
    own = getattr(view, "throttle_scope", None) or []
    scopes = [own] if isinstance(own, str) else list(own)
    path = f"{type(view).__module__}.{type(view).__qualname__}"
    for prefix, configured in settings.THROTTLE_VIEW_SCOPES.items():
        if path == prefix or path.startswith(prefix + "."):
            scopes.extend(scope for scope in configured if scope not in scopes)
    return scopes


class ViewScopeThrottle(BaseThrottle):
    """Per signed-in user, one counter per scope the view is in (``view_scopes``); the request is
    refused if any of them is full."""

    def __init__(self) -> None:
        self.refusals: list[Decision] = []

    def allow_request(self, request: "Request", view: "APIView | None") -> bool:
        user = user_ident(request)
        if user is None or view is None:
            return True
        for scope in view_scopes(view):
            decision = rate_limit_hit(scope=scope, ident=user, rate=rate_setting(f"{scope.upper()}_THROTTLE_RATE"))
            _record(request, decision)
            if not decision.allowed:
                self.refusals.append(decision)
        return not self.refusals

    def wait(self) -> float | None:
        return max((decision.retry_after for decision in self.refusals), default=None)


DEFAULT_THROTTLES: list[type[BaseThrottle]] = [GeneralRateThrottle, ViewScopeThrottle]
