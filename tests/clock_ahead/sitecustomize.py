"""Moves the clock of every Python process started with this folder on ``PYTHONPATH`` by
``CLOCK_AHEAD_DAYS`` days (``make test-clock-ahead``; CI runs the suite this way once).

A test that travels to a fixed date and then compares with the real clock, or that builds
"tomorrow" from a hard-coded date, passes today and fails some day later. Running the whole
suite a year ahead makes such a date bomb go off now. Python's ``site`` imports this module at
start-up, so the servers and Celery workers the suite starts as subprocesses move with it;
``tests/conftest.py`` checks the move took effect. The clock keeps ticking, and monotonic
clocks (timeouts, asyncio) are left alone.
"""

import os

_days = os.environ.get("CLOCK_AHEAD_DAYS")
if _days:
    from datetime import UTC, datetime, timedelta

    import time_machine

    time_machine.travel(datetime.now(UTC) + timedelta(days=float(_days)), tick=True).start()
