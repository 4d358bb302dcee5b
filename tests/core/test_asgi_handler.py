"""The HTTP handler (core/asgi.py ``OneHopASGIHandler``): the middleware chain and the view run
in one hand-off to a thread per request, where Django's own ASGI handler makes several, on a
thread an earlier request used, and every answer is the same."""

import asyncio
import json
import threading

import asgiref.sync
import pytest
from channels.testing import HttpCommunicator
from django.core.handlers.asgi import ASGIHandler

import core.asgi
from core.asgi import OneHopASGIHandler, RequestThreads

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def _get(handler, path: str, monkeypatch) -> tuple[dict, int]:
    """The answer to a GET of ``path`` and how many times the request was handed to a thread."""
    hops = 0
    original = asgiref.sync.SyncToAsync.__call__

    async def counted(self, *args, **kwargs):
        nonlocal hops
        hops += 1
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(asgiref.sync.SyncToAsync, "__call__", counted)
    try:
        communicator = HttpCommunicator(handler, "GET", path, headers=[(b"host", b"localhost")])
        response = await communicator.get_response(timeout=10)
        await communicator.wait(timeout=10)  # the handler has finished, as a server lets it
    finally:
        monkeypatch.setattr(asgiref.sync.SyncToAsync, "__call__", original)
    return response, hops


def _without_request_id(body: bytes) -> dict:
    document = json.loads(body)
    if "error" in document:
        document["error"].pop("request_id")
    return document


@pytest.mark.parametrize("path", ["/api/health/live", "/api/v1/me/", "/api/v1/no-such-route/"])
async def test_one_hand_off_answers_what_djangos_handler_answers(path, monkeypatch):
    ours, our_hops = await _get(OneHopASGIHandler(), path, monkeypatch)
    djangos, django_hops = await _get(ASGIHandler(), path, monkeypatch)

    assert ours["status"] == djangos["status"]
    assert _without_request_id(ours["body"]) == _without_request_id(djangos["body"])
    assert our_hops < django_hops


async def test_later_requests_start_no_thread(monkeypatch):
    """Django's handler starts a thread for every request and ends it with the request; ours
    borrows one an earlier request used."""
    handler = OneHopASGIHandler()
    await _get(handler, "/api/health/live", monkeypatch)  # the first request's thread is new
    started = []
    original_start = threading.Thread.start

    def start(thread):
        started.append(thread.name)
        original_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)

    statuses = [(await _get(handler, "/api/health/live", monkeypatch))[0]["status"] for _ in range(3)]

    assert statuses == [200, 200, 200]
    assert started == []


async def test_a_request_cut_short_does_not_lend_its_thread_again(monkeypatch):
    """Its view may still be running there: the next request would wait for it."""
    monkeypatch.setattr(core.asgi, "REQUEST_THREADS", RequestThreads(keep=4))
    handler = OneHopASGIHandler()
    await _get(handler, "/api/health/live", monkeypatch)
    assert len(core.asgi.REQUEST_THREADS.idle) == 1

    async def cut_short(scope, receive, send):
        raise asyncio.CancelledError

    monkeypatch.setattr(handler, "handle", cut_short)
    with pytest.raises(asyncio.CancelledError):
        await handler({"type": "http", "path": "/api/health/live"}, None, None)

    assert core.asgi.REQUEST_THREADS.idle == []
