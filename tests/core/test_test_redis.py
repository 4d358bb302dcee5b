"""The suite runs on a Redis database of its own (config/settings/test.py), which it flushes:
the database a developer's ``REDIS_URL`` names is left alone."""

import os

import pytest
import redis
from django.conf import settings

from config.settings.test import _test_redis_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/15"),
        ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379/15"),
        ("rediss://:secret@cache:6380/3?ssl_cert_reqs=none", "rediss://:secret@cache:6380/15?ssl_cert_reqs=none"),
        ("unix:///run/redis.sock?db=2", "unix:///run/redis.sock?db=15"),
    ],
)
def test_the_test_database_replaces_the_one_in_the_url(url, expected):
    assert _test_redis_url(url, 15) == expected


@pytest.mark.redis
def test_cache_channel_layer_and_celery_all_use_the_test_database():
    url = settings.REDIS_URL

    assert redis.Redis.from_url(url).connection_pool.connection_kwargs["db"] == int(os.environ.get("REDIS_TEST_DB", 15))
    assert settings.CACHES["default"]["LOCATION"] == url
    assert settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["address"] == url
    assert settings.CELERY_BROKER_URL == settings.CELERY_RESULT_BACKEND == url
