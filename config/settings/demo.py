"""The reference web client at ``/demo/`` (the ``demo`` app, docs/client.md).

A page of plain HTML and JavaScript modules that uses only the public REST API and the realtime
socket: the working example the web and mobile teams integrate from. Off unless enabled:
development and the test suite turn it on (dev.py, test.py); production leaves it off.
"""

from config.settings.env import env

DEMO_CLIENT_ENABLED = env.bool("DEMO_CLIENT_ENABLED", default=False)
