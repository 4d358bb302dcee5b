"""The cache's Redis pool (core/redis_pool.py): one per process, bounded, and waiting for a
free connection rather than opening one more; still exhausted after the wait, a 503. One
redis-py client per pool, whichever thread or command asks."""

import threading

import pytest
from django.core.cache import caches
from django.test import override_settings

from core.redis_pool import SharedConnectionPool
from tests.core.test_outages import assert_service_unavailable

pytestmark = [pytest.mark.redis, pytest.mark.django_db]


def _cache_pool(settings, **pool_options):
    """A cache on the run's Redis with a pool of its own (``pool_options``)."""
    options = {**settings.CACHES["default"]["OPTIONS"], **pool_options}
    return override_settings(CACHES={"default": {**settings.CACHES["default"], "OPTIONS": options}})


def test_every_thread_shares_one_bounded_pool(settings):
    pools = []

    clients = []

    def pool_of_this_thread():
        clients.extend([caches["default"]._cache.get_client(), caches["default"]._cache.get_client(write=True)])
        pools.append(clients[-1].connection_pool)

    threads = [threading.Thread(target=pool_of_this_thread) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({id(pool) for pool in pools}) == 1
    assert len({id(client) for client in clients}) == 1
    assert isinstance(pools[0], SharedConnectionPool)
    assert pools[0].max_connections == settings.CACHES["default"]["OPTIONS"]["max_connections"]


def test_an_exhausted_pool_answers_service_unavailable_after_its_wait(settings, patient_client):
    with _cache_pool(settings, max_connections=1, timeout=0.2):
        pool = caches["default"]._cache.get_client().connection_pool
        held = pool.get_connection()  # the pool's only connection, taken
        try:
            response = patient_client.post("/api/v1/realtime/tickets/")
        finally:
            pool.release(held)
        after_release = patient_client.post("/api/v1/realtime/tickets/")

    assert_service_unavailable(response)
    assert after_release.status_code == 201


def test_a_request_waits_for_a_connection_another_thread_gives_back(settings, patient_client):
    with _cache_pool(settings, max_connections=1, timeout=5):
        pool = caches["default"]._cache.get_client().connection_pool
        held = pool.get_connection()
        threading.Timer(0.2, pool.release, args=[held]).start()

        response = patient_client.post("/api/v1/realtime/tickets/")

    assert response.status_code == 201
