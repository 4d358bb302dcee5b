"""The one rate-limit mechanism (core/ratelimit.py): sliding windows at their boundaries with time
frozen, the X-RateLimit-* headers and Retry-After of allowed and refused answers, the general
budget of every endpoint, the call, ticket and socket connection limits, and one round trip per
check on Redis."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from channels.db import database_sync_to_async
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils.module_loading import import_string
from rest_framework.views import APIView

from core.ratelimit import (
    DEFAULT_THROTTLES,
    GeneralRateThrottle,
    Rate,
    ViewScopeThrottle,
    parse_rate,
    rate_limit_hit,
    view_scopes,
)
from realtime.tickets import ticket_issue
from tests.assertions import assert_error
from tests.conftest import client_for
from tests.video_calls.call_helpers import open_session

# A fixed instant on a whole second, and one in the middle of a second.
T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
T_EPOCH = int(T.timestamp())
ME = "/api/v1/me/"
ICE = "/api/v1/calls/ice-servers/"
HISTORY = "/api/v1/calls/history/"
TICKETS = "/api/v1/realtime/tickets/"
INITIATE = "/api/v1/calls/initiate/"


@pytest.fixture(autouse=True)
def _at_t():
    """Every test starts at T (tokens and tickets are made then); ``at`` moves on from there."""
    with time_machine.travel(T, tick=False):
        yield


def at(seconds: float):
    return time_machine.travel(T + timedelta(seconds=seconds), tick=False)


def _headers(response) -> tuple[int, int, int]:
    return (
        int(response["X-RateLimit-Limit"]),
        int(response["X-RateLimit-Remaining"]),
        int(response["X-RateLimit-Reset"]),
    )


# --- Rates -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("30/min", Rate(30, 60)),
        ("10/hour", Rate(10, 3600)),
        ("1/5s", Rate(1, 5)),
        ("100/15min", Rate(100, 900)),
        ("5/second", Rate(5, 1)),
        ("1000/day", Rate(1000, 86400)),
        (" 2 / 10 s ", Rate(2, 10)),
    ],
)
def test_rates_are_parsed(text, rate):
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "30", "30/", "x/min", "30/fortnight", "1/0s", "-1/min"])
def test_a_malformed_rate_is_a_configuration_error(text):
    with pytest.raises(ImproperlyConfigured):
        parse_rate(text)


# --- The window at its boundaries --------------------------------------------------------------


@pytest.mark.django_db
def test_the_limit_is_allowed_one_over_is_refused_and_the_window_slides():
    rate = Rate(3, 60)

    with at(0):
        first = [rate_limit_hit(scope="test", ident="u", rate=rate) for _ in range(3)]
        over = rate_limit_hit(scope="test", ident="u", rate=rate)
    with at(59.999):
        still_over = rate_limit_hit(scope="test", ident="u", rate=rate)
    with at(60):
        reset = rate_limit_hit(scope="test", ident="u", rate=rate)

    assert [(d.allowed, d.remaining, d.reset_at) for d in first] == [
        (True, 2, T_EPOCH + 60),
        (True, 1, T_EPOCH + 60),
        (True, 0, T_EPOCH + 60),
    ]
    assert (over.allowed, over.remaining, over.retry_after, over.reset_at) == (False, 0, 60, T_EPOCH + 60)
    assert (still_over.allowed, still_over.retry_after) == (False, 1)
    # At exactly a minute the three leave the window together: one counted, two left.
    assert (reset.allowed, reset.remaining, reset.reset_at) == (True, 2, T_EPOCH + 120)


@pytest.mark.django_db
def test_a_sliding_window_frees_one_place_per_request_that_leaves_it():
    rate = Rate(2, 60)
    with at(0):
        rate_limit_hit(scope="test", ident="u", rate=rate)
    with at(30):
        rate_limit_hit(scope="test", ident="u", rate=rate)
        full = rate_limit_hit(scope="test", ident="u", rate=rate)
    with at(60):
        freed = rate_limit_hit(scope="test", ident="u", rate=rate)
        full_again = rate_limit_hit(scope="test", ident="u", rate=rate)

    # Refused at 30 s: the request of 0 s leaves at 60 s, in 30 s.
    assert (full.allowed, full.retry_after, full.reset_at) == (False, 30, T_EPOCH + 60)
    assert (freed.allowed, freed.remaining) == (True, 0)
    # Now the request of 30 s is the one to leave, at 90 s.
    assert (full_again.allowed, full_again.retry_after, full_again.reset_at) == (False, 30, T_EPOCH + 90)


@pytest.mark.django_db
def test_refused_requests_are_not_counted():
    rate = Rate(1, 10)
    with at(0):
        rate_limit_hit(scope="test", ident="u", rate=rate)
    for second in range(1, 10):
        with at(second):
            assert not rate_limit_hit(scope="test", ident="u", rate=rate).allowed
    with at(10):
        assert rate_limit_hit(scope="test", ident="u", rate=rate).allowed


@pytest.mark.django_db
def test_retry_after_rounds_up_a_part_of_a_second():
    rate = Rate(1, 5)
    with at(0.25):
        rate_limit_hit(scope="test", ident="u", rate=rate)
    with at(1):
        refused = rate_limit_hit(scope="test", ident="u", rate=rate)

    # The request of 0.25 s leaves at 5.25 s: 4.25 s from now, said as 5; the reset rounds up too.
    assert (refused.retry_after, refused.reset_at) == (5, T_EPOCH + 6)


@pytest.mark.django_db
def test_scopes_and_idents_are_counted_apart():
    rate = Rate(1, 60)
    with at(0):
        assert rate_limit_hit(scope="a", ident="u", rate=rate).allowed
        assert rate_limit_hit(scope="b", ident="u", rate=rate).allowed
        assert rate_limit_hit(scope="a", ident="v", rate=rate).allowed
        assert not rate_limit_hit(scope="a", ident="u", rate=rate).allowed


# --- REST: the general budget and its headers --------------------------------------------------


@pytest.mark.django_db
def test_every_answer_of_a_signed_in_user_carries_the_headers_and_the_one_over_is_429(patient, settings):
    settings.USER_THROTTLE_RATE = "3/min"
    client = client_for(patient)

    with at(0):
        allowed = [client.get(ME) for _ in range(3)]
        refused = client.get(ME)
    with at(60):
        after = client.get(ME)

    assert [r.status_code for r in allowed] == [200, 200, 200]
    assert [_headers(r) for r in allowed] == [(3, 2, T_EPOCH + 60), (3, 1, T_EPOCH + 60), (3, 0, T_EPOCH + 60)]
    assert "Retry-After" not in allowed[0]
    error = assert_error(refused, 429, "RATE_LIMITED")
    assert _headers(refused) == (3, 0, T_EPOCH + 60)
    assert refused["Retry-After"] == "60"
    assert error["details"] == {"retry_after": 60}
    assert after.status_code == 200
    assert _headers(after) == (3, 2, T_EPOCH + 120)


@pytest.mark.django_db
def test_the_general_budget_is_one_for_all_endpoints_of_a_user(patient, doctor, settings):
    settings.USER_THROTTLE_RATE = "2/min"
    client = client_for(patient)

    with at(0):
        client.get(ME)
        client.get("/api/v1/conversations/")
        refused = client.get(ICE)
        other_user = client_for(doctor).get(ME)

    assert_error(refused, 429, "RATE_LIMITED")
    assert other_user.status_code == 200


@pytest.mark.django_db
def test_anonymous_requests_are_limited_per_ip(settings):
    settings.ANON_THROTTLE_RATE = "2/min"
    body = {"email": "nobody@example.test"}
    here = {"REMOTE_ADDR": "203.0.113.7"}

    with at(0):
        from rest_framework.test import APIClient

        statuses = [APIClient(**here).post("/api/v1/auth/password/forgot/", body).status_code for _ in range(2)]
        refused = APIClient(**here).post("/api/v1/auth/password/forgot/", body)
        elsewhere = APIClient(REMOTE_ADDR="198.51.100.1").post("/api/v1/auth/password/forgot/", body)

    assert statuses == [202, 202]
    assert_error(refused, 429, "RATE_LIMITED")
    assert refused["X-RateLimit-Limit"] == "2"
    assert elsewhere.status_code == 202


@pytest.mark.django_db
def test_the_headers_describe_the_limit_closest_to_refusing(patient, settings):
    # The general budget has 10; the video-call budget 2: the headers are the video-call one's.
    settings.USER_THROTTLE_RATE = "10/min"
    settings.VIDEO_CALL_THROTTLE_RATE = "2/min"
    client = client_for(patient)

    with at(0):
        first = client.get(ICE)
        me = client.get(ME)

    assert _headers(first) == (2, 1, T_EPOCH + 60)
    assert _headers(me) == (10, 8, T_EPOCH + 60)


def _drf_views():
    """Every DRF view class the URLconf routes to, with its route."""

    def walk(patterns, prefix=""):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                view_class = getattr(entry.callback, "cls", None) or getattr(entry.callback, "view_class", None)
                if isinstance(view_class, type) and issubclass(view_class, APIView):
                    yield prefix + str(entry.pattern), view_class

    return list(walk(get_resolver().url_patterns))


UNTHROTTLED = {"api/health/live", "api/health/ready"}


def test_every_api_endpoint_has_the_general_budget():
    views = _drf_views()
    missing = []
    for route, view_class in views:
        for method in ("GET", "POST"):
            view = view_class()
            view.request = type("Request", (), {"method": method})()
            view.kwargs = {}
            throttles = [type(throttle) for throttle in view.get_throttles()]
            if GeneralRateThrottle not in throttles and route.rstrip("/") not in UNTHROTTLED:
                missing.append((route, method))

    assert len(views) > 40
    assert missing == []


def test_the_default_throttles_are_the_settings_ones():
    configured = [import_string(name) for name in django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]]
    assert configured == DEFAULT_THROTTLES == [GeneralRateThrottle, ViewScopeThrottle]


def test_every_configured_view_scope_names_a_view_and_a_rate():
    for prefix, scopes in django_settings.THROTTLE_VIEW_SCOPES.items():
        try:
            import_string(prefix)
        except ImportError:
            # a package or module prefix: it must import, and route to at least one view
            __import__(prefix)
            assert any(f"{v.__module__}.".startswith(prefix + ".") for _, v in _drf_views()), prefix
        for scope in scopes:
            parse_rate(getattr(django_settings, f"{scope.upper()}_THROTTLE_RATE"))


def test_every_call_endpoint_is_in_the_video_call_scope():
    call_views = [view for route, view in _drf_views() if route.startswith("api/v1/calls/")]

    assert len(call_views) > 20
    assert all("video_call" in view_scopes(view()) for view in call_views)
    assert "call_initiate" in view_scopes(import_string("video_calls.apis.calls.CallInitiateApi")())


# --- Calls -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_video_call_endpoints_share_a_per_user_budget(patient, doctor, settings):
    settings.VIDEO_CALL_THROTTLE_RATE = "2/min"
    client = client_for(patient)

    with at(0):
        assert client.get(ICE).status_code == 200
        assert client.get(HISTORY).status_code == 200
        refused = client.get(ICE)
        outside_calls = client.get(ME)
        another_user = client_for(doctor).get(ICE)
    with at(60):
        after = client.get(HISTORY)

    assert_error(refused, 429, "RATE_LIMITED")
    assert refused["Retry-After"] == "60"
    assert outside_calls.status_code == 200
    assert another_user.status_code == 200
    assert after.status_code == 200


@pytest.mark.django_db
def test_the_default_video_call_rate_is_sixty_a_minute(patient, settings):
    settings.VIDEO_CALL_THROTTLE_RATE = "60/min"
    client = client_for(patient)

    with at(0):
        statuses = [client.get(ICE).status_code for _ in range(61)]

    assert statuses == [200] * 60 + [429]


@pytest.mark.django_db
def test_call_initiation_is_one_per_five_seconds(doctor, patient, settings):
    settings.CALL_INITIATE_THROTTLE_RATE = "1/5s"  # the production default
    open_session(doctor, patient, starts_in_minutes=60 * 24)
    client = client_for(doctor)
    body = {"callee_id": str(patient.pk), "media": "voice"}

    with at(0):
        first = client.post(INITIATE, body)
        client.post(f"/api/v1/calls/{first.json()['id']}/cancel/")
    with at(4.999):
        refused = client.post(INITIATE, body)
    with at(5):
        again = client.post(INITIATE, body)

    assert first.status_code == 201, first.content
    assert _headers(first)[:2] == (1, 0)
    assert_error(refused, 429, "RATE_LIMITED")
    assert refused["Retry-After"] == "1"
    assert again.status_code == 201, again.content


@pytest.mark.django_db
def test_a_socket_request_counts_on_the_same_counter_as_its_rest_scope(doctor, patient, settings):
    from core.ratelimit import RateLimited, throttle_user_scope

    settings.CALL_INITIATE_THROTTLE_RATE = "1/5s"
    open_session(doctor, patient, starts_in_minutes=60 * 24)
    with at(0):
        assert client_for(doctor).post(INITIATE, {"callee_id": str(patient.pk)}).status_code == 201
        with pytest.raises(RateLimited) as refused:
            throttle_user_scope("call_initiate", doctor)
    with at(5):
        throttle_user_scope("call_initiate", doctor)
        rest_refused = client_for(doctor).post(INITIATE, {"callee_id": str(patient.pk)})

    assert refused.value.details == {"retry_after": 5}
    assert_error(rest_refused, 429, "RATE_LIMITED")


# --- Socket tickets and connections -------------------------------------------------------------


@pytest.mark.django_db
def test_tickets_are_limited_per_user(patient, doctor, settings):
    settings.REALTIME_TICKET_THROTTLE_RATE = "10/min"
    client = client_for(patient)

    with at(0):
        issued = [client.post(TICKETS) for _ in range(10)]
        refused = client.post(TICKETS)
        other = client_for(doctor).post(TICKETS)
    with at(60):
        after = client.post(TICKETS)

    assert [r.status_code for r in issued] == [201] * 10
    assert _headers(issued[-1]) == (10, 0, T_EPOCH + 60)
    error = assert_error(refused, 429, "RATE_LIMITED")
    assert error["details"] == {"retry_after": 60}
    assert other.status_code == 201
    assert after.status_code == 201


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_connection_over_the_limit_gets_rate_limited_and_closes_with_4429(patient, settings):
    from tests.realtime.conftest import open_socket, receive

    settings.REALTIME_CONNECT_THROTTLE_RATE = "2/min"
    tickets = [await database_sync_to_async(ticket_issue)(user=patient) for _ in range(3)]

    with at(0):
        opened = [await open_socket(ticket=ticket) for ticket in tickets[:2]]
        readies = [await receive(socket) for socket in opened]
        refused = await open_socket(ticket=tickets[2])
        error = await receive(refused)
        closed = await refused.receive_output(timeout=5)

    assert [ready["type"] for ready in readies] == ["connection.ready"] * 2
    assert error["type"] == "error"
    assert error["data"]["code"] == "RATE_LIMITED"
    assert error["data"]["details"] == {"retry_after": 60}
    assert closed == {"type": "websocket.close", "code": 4429}
    for socket in opened:
        await socket.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_connections_are_counted_per_user_and_the_window_reopens(patient, doctor, settings):
    from tests.realtime.conftest import open_socket, receive

    settings.REALTIME_CONNECT_THROTTLE_RATE = "1/min"
    with at(0):
        first = await open_socket(patient)
        other = await open_socket(doctor)
        refused = await open_socket(ticket=await database_sync_to_async(ticket_issue)(user=patient))
        assert (await receive(refused))["data"]["code"] == "RATE_LIMITED"
    with at(60):
        later = await open_socket(patient)  # open_socket checks connection.ready

    for socket in (first, other, later):
        await socket.disconnect()


# --- Redis -------------------------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.django_db
def test_on_redis_a_check_is_one_round_trip_and_keeps_the_semantics(monkeypatch):
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache
    from redis import Redis

    assert isinstance(caches["default"], RedisCache)  # the run is on Redis
    commands = []
    original = Redis.execute_command

    def counted(self, *args, **options):
        commands.append(args[0])
        return original(self, *args, **options)

    monkeypatch.setattr(Redis, "execute_command", counted)
    rate = Rate(2, 60)
    with at(0):
        decisions = [rate_limit_hit(scope="test", ident="u", rate=rate) for _ in range(3)]
    with at(60):
        reset = rate_limit_hit(scope="test", ident="u", rate=rate)

    assert commands == ["EVAL"] * 4
    assert [(d.allowed, d.remaining, d.retry_after, d.reset_at) for d in decisions] == [
        (True, 1, 0, T_EPOCH + 60),
        (True, 0, 0, T_EPOCH + 60),
        (False, 0, 60, T_EPOCH + 60),
    ]
    assert (reset.allowed, reset.remaining) == (True, 1)


@pytest.mark.redis
@pytest.mark.django_db
def test_on_redis_the_counter_expires_with_its_window():
    from django.core.cache import cache

    with at(0):
        rate_limit_hit(scope="test", ident="u", rate=Rate(5, 60))
    client = cache._cache.get_client(write=False)
    key = cache.make_and_validate_key("ratelimit:test:u")

    assert 0 < client.pttl(key) <= 60_000


# --- Schema ------------------------------------------------------------------------------------


def test_the_schema_names_the_headers_on_every_api_answer():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = [
        (path, operation)
        for path, item in schema["paths"].items()
        if path.startswith("/api/v1/")
        for operation in item.values()
    ]

    assert schema["components"]["headers"]["X-RateLimit-Reset"]["schema"] == {"type": "integer"}
    for path, operation in operations:
        for status_code, response in operation["responses"].items():
            assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(
                response.get("headers", {})
            ), (path, status_code)
        assert "Retry-After" in operation["responses"]["429"]["headers"], path
