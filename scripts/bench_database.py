"""What the in-process benchmarks share: Django set up with the test settings, and a throwaway
database of their own (``bench_<name>_<pid>``, on whatever ``DATABASE_URL`` names), created
before the figures and dropped after them, whatever happens in between."""

import contextlib
import os
import sys
from pathlib import Path


def setup_django(name: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django
    from django.conf import settings

    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = f"bench_{name}_{os.getpid()}"
    django.setup()


@contextlib.contextmanager
def throwaway_database():
    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        yield connection
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()
