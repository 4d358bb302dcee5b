"""Prepare the database ``make bench-chat`` runs against, and count what one send costs.

Run by the harness with the server's environment (same ``DATABASE_URL``, ``SECRET_KEY``,
``REDIS_URL``, rates). The pairs are the signaling benchmark's (bench/signaling/django_setup.py:
a doctor and a patient with a session between them — the care relationship that lets them
message — in an ongoing call both joined, and an access token each); this adds each pair's
direct conversation, opened through ``conversation_direct_open`` as the first message would.

With ``--count``, one send of the socket's ``chat.send`` handler (``messaging.consumers._send``:
the rate limit, then ``message_send``) runs in this process after a warm-up send, and is counted
two ways:

- the SQL Django executes (``CaptureQueriesContext``), with its text: the statements and the
  transaction's ``BEGIN`` and ``COMMIT``, each one request to PostgreSQL;
- the fan-outs it emits (``core.events``' collected events, each one ``group_send_many`` to its
  groups: core/channel_layers.py).

Then ``--time-sends`` more sends are timed one after another (no concurrency), with the share of
that time spent in SQL as Django measures it.

Writes ``{"pairs": [...], "send": {...}}`` to ``--out``.
"""

import argparse
import json
import os
import re
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "signaling"))

import django_setup  # noqa: E402 - sets Django up
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from accounts.models import User  # noqa: E402
from core import events  # noqa: E402
from messaging.consumers import _send  # noqa: E402
from messaging.serializers import MessageSendSerializer  # noqa: E402
from messaging.services.conversations import conversation_direct_open  # noqa: E402

sys.path.insert(0, str(HERE))
from chat_loadgen import chat_text  # noqa: E402


def _data(conversation_id: str, text: str) -> dict:
    serializer = MessageSendSerializer(
        data={"conversation_id": conversation_id, "body": text, "client_message_id": f"setup-{uuid.uuid4().hex}"}
    )
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def count_send(doctor: User, conversation_id: str, text: str, time_sends: int) -> dict:
    collected: list = []
    token = events._collected.set(collected)
    try:
        _send(user=doctor, data=_data(conversation_id, text))  # warm-up: first-use caches
        collected.clear()
        with CaptureQueriesContext(connection) as queries:
            _send(user=doctor, data=_data(conversation_id, text))
        fan_out = [{"groups": list(groups), "event": message["event"]["type"]} for groups, message in collected]
        durations, sql_seconds = [], 0.0
        for _ in range(time_sends):
            data = _data(conversation_id, text)
            with CaptureQueriesContext(connection) as timed:
                started = time.perf_counter()
                _send(user=doctor, data=data)
                durations.append(time.perf_counter() - started)
            sql_seconds += sum(float(query["time"]) for query in timed.captured_queries)
    finally:
        events._collected.reset(token)
    durations.sort()
    return {
        "statements": len(queries.captured_queries),
        "sql": [re.sub(r"\s+", " ", query["sql"])[:300] for query in queries.captured_queries],
        # Django lists the transaction's BEGIN and COMMIT too: each is a request to PostgreSQL.
        "transaction_control": sum(1 for query in queries.captured_queries if query["sql"] in ("BEGIN", "COMMIT")),
        "channel_layer_messages": len(fan_out),
        "fan_out": fan_out,
        "sequential_sends": len(durations),
        "sequential_send_ms_p50": durations[len(durations) // 2] * 1000 if durations else None,
        "sequential_sql_share": sql_seconds / sum(durations) if durations else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--count", action="store_true", help="Count one send (see the module's docstring).")
    parser.add_argument("--time-sends", type=int, default=50)
    parser.add_argument("--text-chars", type=int, default=200)
    arguments = parser.parse_args()
    pairs = django_setup.prepare(arguments.pairs)
    users = {user.pk: user for user in User.objects.filter(pk__in=[item["a"]["id"] for item in pairs])}
    for item in pairs:
        doctor = users[uuid.UUID(item["a"]["id"])]
        conversation, _ = conversation_direct_open(user=doctor, other_id=item["b"]["id"])
        item["conversation_id"] = str(conversation.pk)
    result: dict = {"pairs": pairs}
    if arguments.count:
        first = pairs[0]
        result["send"] = count_send(
            users[uuid.UUID(first["a"]["id"])],
            first["conversation_id"],
            chat_text(arguments.text_chars),
            arguments.time_sends,
        )
    Path(arguments.out).write_text(json.dumps(result))


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
    main()
