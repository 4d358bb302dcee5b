"""What storing a chat message costs PostgreSQL alone, without Django, the socket or Redis: the
ceiling of any ``chat.send`` on this database, and how much of it the shape of the send decides.

Run against the database ``make bench-chat`` prepared (its pairs and direct conversations, with the
schema of this checkout's migrations). C concurrent connections (psycopg, async, one event loop)
each store messages in the benchmark's conversations for a fixed time, in one of two shapes:

- ``current``: the requests a send makes today, in the same order, with the same locks:
  ``BEGIN``; lock the conversation (member check); look the client key up; check the care
  relationship; insert the message; insert the receipt; update the conversation; ``COMMIT``.
- ``one-statement``: the same checks and writes as one statement in autocommit — an ``UPDATE``
  of the conversation that takes the row lock, checks membership, the care relationship and the
  client key and returns the next number, feeding the two inserts (a data-modifying ``WITH``).
  A sketch of what the send could be (no contacts, staff or call chats), not a replacement.
- ``batched``: the one statement for ``--batch`` messages of different conversations at once
  (arrays unnested), one commit for all of them — what a writer that gathers the sends arriving
  within a millisecond or two into one transaction would cost (group commit).

Bounded: ``--seconds`` per shape, each request waits at most ``--timeout``. Loopback only.

    .venv/bin/python bench/chat/storage_ceiling.py --connections 20 --seconds 10
"""

import argparse
import asyncio
import os
import statistics
import time
import uuid
from urllib.parse import urlsplit

import psycopg

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/telehealth_bench_chat"
BODY = "gAAAAAB" + "x" * 350  # about the size of a Fernet token of a 200-character message
KEY_ID = "benchkey00000000"

CURRENT = [
    (
        "SELECT c.id, c.kind, c.user_low_id, c.user_high_id, c.call_id, c.last_seq FROM messaging_conversation c"
        " JOIN messaging_conversationmember m ON m.conversation_id = c.id"
        " WHERE c.id = %(conversation)s AND m.user_id = %(sender)s LIMIT 1 FOR UPDATE OF c"
    ),
    "SELECT id FROM messaging_message WHERE sender_id = %(sender)s AND client_message_id = %(key)s LIMIT 1",
    (
        "SELECT 1 FROM consultations_session WHERE NOT status = 'cancelled'"
        " AND doctor_id = %(sender)s AND patient_id = %(other)s LIMIT 1"
    ),
    (
        "INSERT INTO messaging_message (id, conversation_id, seq, sender_id, type, body_encrypted, key_id, call_id,"
        " is_private, recipient_id, client_message_id, created_at)"
        " VALUES (%(id)s, %(conversation)s, %(seq)s, %(sender)s, 'text', %(body)s, %(key_id)s, NULL, false, NULL,"
        " %(key)s, now())"
    ),
    (
        "INSERT INTO messaging_messagereceipt (message_id, recipient_id, conversation_id, seq, status)"
        " VALUES (%(id)s, %(other)s, %(conversation)s, %(seq)s, 'sent')"
    ),
    "UPDATE messaging_conversation SET last_seq = %(seq)s, last_message_at = now() WHERE id = %(conversation)s",
]

ONE_STATEMENT = """
WITH c AS (
    UPDATE messaging_conversation AS c SET last_seq = c.last_seq + 1, last_message_at = now()
    WHERE c.id = %(conversation)s
      AND EXISTS (SELECT 1 FROM messaging_conversationmember m WHERE m.conversation_id = c.id AND m.user_id = %(sender)s)
      AND EXISTS (
          SELECT 1 FROM consultations_session s WHERE s.status <> 'cancelled'
          AND ((s.doctor_id = c.user_low_id AND s.patient_id = c.user_high_id)
               OR (s.doctor_id = c.user_high_id AND s.patient_id = c.user_low_id)))
      AND NOT EXISTS (
          SELECT 1 FROM messaging_message r WHERE r.sender_id = %(sender)s AND r.client_message_id = %(key)s)
    RETURNING c.id, c.last_seq, c.call_id,
              CASE WHEN c.user_low_id = %(sender)s THEN c.user_high_id ELSE c.user_low_id END AS other
), m AS (
    INSERT INTO messaging_message (id, conversation_id, seq, sender_id, type, body_encrypted, key_id, call_id,
                                   is_private, recipient_id, client_message_id, created_at)
    SELECT %(id)s, c.id, c.last_seq, %(sender)s, 'text', %(body)s, %(key_id)s, c.call_id, false, NULL, %(key)s, now()
    FROM c
    RETURNING id, seq, conversation_id
)
INSERT INTO messaging_messagereceipt (message_id, recipient_id, conversation_id, seq, status)
SELECT m.id, c.other, m.conversation_id, m.seq, 'sent' FROM m, c
RETURNING message_id, seq
"""


BATCHED = """
WITH t AS (
    SELECT * FROM unnest(%(conversations)s::uuid[], %(senders)s::uuid[], %(ids)s::uuid[], %(keys)s::text[])
        AS t(conversation, sender, id, key)
), c AS (
    UPDATE messaging_conversation AS c SET last_seq = c.last_seq + 1, last_message_at = now()
    FROM t
    WHERE c.id = t.conversation
      AND EXISTS (SELECT 1 FROM messaging_conversationmember m WHERE m.conversation_id = c.id AND m.user_id = t.sender)
      AND EXISTS (
          SELECT 1 FROM consultations_session s WHERE s.status <> 'cancelled'
          AND ((s.doctor_id = c.user_low_id AND s.patient_id = c.user_high_id)
               OR (s.doctor_id = c.user_high_id AND s.patient_id = c.user_low_id)))
      AND NOT EXISTS (
          SELECT 1 FROM messaging_message r WHERE r.sender_id = t.sender AND r.client_message_id = t.key)
    RETURNING c.id, c.last_seq, c.call_id, t.sender, t.id AS message_id, t.key,
              CASE WHEN c.user_low_id = t.sender THEN c.user_high_id ELSE c.user_low_id END AS other
), m AS (
    INSERT INTO messaging_message (id, conversation_id, seq, sender_id, type, body_encrypted, key_id, call_id,
                                   is_private, recipient_id, client_message_id, created_at)
    SELECT c.message_id, c.id, c.last_seq, c.sender, 'text', %(body)s, %(key_id)s, c.call_id, false, NULL, c.key, now()
    FROM c
    RETURNING id, seq, conversation_id
)
INSERT INTO messaging_messagereceipt (message_id, recipient_id, conversation_id, seq, status)
SELECT m.id, c.other, m.conversation_id, m.seq, 'sent' FROM m JOIN c ON c.message_id = m.id
RETURNING message_id
"""


async def conversations(database_url: str) -> list[tuple]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as connection:
        cursor = await connection.execute(
            "SELECT c.id, c.user_low_id, c.user_high_id, s.doctor_id FROM messaging_conversation c"
            " JOIN consultations_session s ON (s.doctor_id = c.user_low_id AND s.patient_id = c.user_high_id)"
            " OR (s.doctor_id = c.user_high_id AND s.patient_id = c.user_low_id)"
            " WHERE c.kind = 'direct' AND s.status <> 'cancelled'"
        )
        rows = await cursor.fetchall()
    seen, result = set(), []
    for conversation, low, high, doctor in rows:
        if conversation not in seen:
            seen.add(conversation)
            result.append((conversation, doctor, high if doctor == low else low))
    return result


async def worker(database_url, shape, targets, deadline, timeout, latencies, errors, batch=1) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=(shape != "current")) as connection:
        index = 0
        while time.monotonic() < deadline:
            if shape == "batched":
                # Distinct conversations in one statement: each gets the next number once.
                chosen = [targets[(index + offset) % len(targets)] for offset in range(min(batch, len(targets)))]
                index += len(chosen)
                params = {
                    "conversations": [item[0] for item in chosen],
                    "senders": [item[1] for item in chosen],
                    "ids": [uuid.uuid4() for _ in chosen],
                    "keys": [f"ceiling-{uuid.uuid4().hex}" for _ in chosen],
                    "body": BODY,
                    "key_id": KEY_ID,
                }
                started = time.monotonic()
                try:
                    cursor = await asyncio.wait_for(connection.execute(BATCHED, params), timeout)
                    stored = len(await cursor.fetchall())
                except (psycopg.Error, TimeoutError) as error:
                    errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
                    continue
                elapsed = (time.monotonic() - started) * 1000
                latencies.extend([elapsed] * stored)
                if stored < len(chosen):
                    errors["refused"] = errors.get("refused", 0) + len(chosen) - stored
                continue
            conversation, doctor, patient = targets[index % len(targets)]
            index += 1
            params = {
                "conversation": conversation,
                "sender": doctor,
                "other": patient,
                "id": uuid.uuid4(),
                "key": f"ceiling-{uuid.uuid4().hex}",
                "body": BODY,
                "key_id": KEY_ID,
            }
            started = time.monotonic()
            try:
                if shape == "one-statement":
                    cursor = await asyncio.wait_for(connection.execute(ONE_STATEMENT, params), timeout)
                    if await cursor.fetchone() is None:
                        errors["refused"] = errors.get("refused", 0) + 1
                        continue
                else:
                    async with connection.transaction():
                        cursor = await connection.execute(CURRENT[0], params)
                        row = await cursor.fetchone()
                        params["seq"] = row[5] + 1
                        for statement in CURRENT[1:]:
                            await asyncio.wait_for(connection.execute(statement, params), timeout)
            except (psycopg.Error, TimeoutError) as error:
                errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
                continue
            latencies.append((time.monotonic() - started) * 1000)


async def measure(database_url: str, shape: str, connections: int, seconds: float, timeout: float, batch: int) -> dict:
    targets = await conversations(database_url)
    if not targets:
        raise SystemExit("No benchmark conversations: run make bench-chat first.")
    latencies: list[float] = []
    errors: dict[str, int] = {}
    cpu = time.process_time()
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(
        *(
            worker(
                database_url, shape, targets[index::connections] or targets, deadline, timeout, latencies, errors, batch
            )
            for index in range(connections)
        )
    )
    elapsed = time.monotonic() - started
    latencies.sort()
    return {
        "shape": shape if shape != "batched" else f"batched x{batch}",
        "connections": connections,
        "conversations": len(targets),
        "sends_per_second": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) if latencies else None,
        "p99_ms": latencies[int(0.99 * (len(latencies) - 1))] if latencies else None,
        "driver_cpu_cores": (time.process_time() - cpu) / elapsed,
        "errors": errors,
        "load_average": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_CHAT_DATABASE_URL") or DEFAULT_DATABASE_URL)
    parser.add_argument("--connections", type=int, default=20, help="Concurrent connections (the server's pool: 20).")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--shapes", default="current,one-statement,batched")
    parser.add_argument("--batch", type=int, default=10, help="Messages per statement of the batched shape.")
    arguments = parser.parse_args()
    if urlsplit(arguments.database_url).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("The database must be on this machine.")
    if not 1 <= arguments.connections <= 100 or not 1 <= arguments.seconds <= 120 or not 1 <= arguments.batch <= 500:
        raise SystemExit("--connections 1..100, --seconds 1..120, --batch 1..500")
    for shape in arguments.shapes.split(","):
        result = asyncio.run(
            measure(
                arguments.database_url,
                shape.strip(),
                arguments.connections,
                arguments.seconds,
                arguments.timeout,
                arguments.batch,
            )
        )
        print(
            f"{result['shape']:>14}: {result['sends_per_second']:,.0f} messages stored/s, p50 {result['p50_ms']:.1f} ms,"
            f" p99 {result['p99_ms']:.1f} ms, {result['connections']} connections over {result['conversations']}"
            f" conversations, driver CPU {result['driver_cpu_cores']:.2f} cores, errors {result['errors']},"
            f" load {result['load_average'][0]:.2f}"
        )


if __name__ == "__main__":
    main()
