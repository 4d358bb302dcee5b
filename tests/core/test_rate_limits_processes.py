"""A limit holds across server processes: two OS processes checking the same user's budget on the
same Redis at the same moment are allowed, together, exactly the limit (services run)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from core.ratelimit import Rate, rate_limit_hit

pytestmark = pytest.mark.redis

ROOT = Path(__file__).parents[2]
LIMIT = 50
TRIES_PER_PROCESS = 40

_CHECKER = """
import json, sys, time
import django
django.setup()
from core.ratelimit import Rate, rate_limit_hit

start_at, tries, limit = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rate_limit_hit(scope="warm-up", ident=sys.argv[4], rate=Rate(1000, 60))  # connect before the start
while time.time() < start_at:
    time.sleep(0.001)
allowed = sum(rate_limit_hit(scope="shared", ident="one-user", rate=Rate(limit, 60)).allowed for _ in range(tries))
print(json.dumps({"allowed": allowed}))
"""


def _environment() -> dict[str, str]:
    database = settings.CACHES["default"]["LOCATION"].rsplit("/", 1)[-1]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        # The test settings put the suite on REDIS_TEST_DB: the same database as this process.
        "REDIS_URL": settings.REDIS_URL,
        "REDIS_TEST_DB": database,
        "LOG_LEVEL": "CRITICAL",
    }


def test_two_processes_together_get_exactly_the_limit():
    assert isinstance(caches["default"], RedisCache)  # the run is on Redis
    start_at = time.time() + 3  # both are connected and waiting by then
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _CHECKER, str(start_at), str(TRIES_PER_PROCESS), str(LIMIT), str(n)],
            cwd=ROOT,
            env=_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    outputs = [process.communicate(timeout=60) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], [err for _, err in outputs]
    allowed = [json.loads(out)["allowed"] for out, _ in outputs]

    # 80 tries against a limit of 50: exactly 50 went through, shared between the two processes,
    # and this process, counting on the same Redis, finds the budget spent.
    assert sum(allowed) == LIMIT, allowed
    assert all(count > 0 for count in allowed), allowed
    assert not rate_limit_hit(scope="shared", ident="one-user", rate=Rate(LIMIT, 60)).allowed
