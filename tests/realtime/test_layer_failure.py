"""A channel layer that fails while a client is connected: the connection closes with 4503, so
the client reconnects and re-syncs (docs/realtime.md), instead of staying open and deaf."""

import pytest
import redis
from django.conf import settings

from tests.realtime.conftest import open_socket

pytestmark = [pytest.mark.asyncio, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


async def test_losing_the_redis_connection_closes_with_4503(patient):
    socket = await open_socket(patient)

    # Cut this suite's connections to Redis (those on its database), as a restart would.
    killer = redis.Redis.from_url(settings.REDIS_URL)
    database = str(killer.connection_pool.connection_kwargs.get("db", 0))
    own_id = killer.client_id()
    victims = [c["id"] for c in killer.client_list() if c["db"] == database and c["id"] != str(own_id)]
    for client_id in victims:
        killer.client_kill_filter(_id=client_id)
    killer.close()

    assert victims
    assert await socket.receive_output(timeout=10) == {"type": "websocket.close", "code": 4503}
