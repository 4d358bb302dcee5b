"""The audit trail (audit/, docs/operations.md#audit-trail): how long entries are kept, and the
prune that enforces it."""

from config.settings.env import env

# Six years, as HIPAA keeps its required documentation (45 CFR §164.316(b)(2)).
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=6 * 365)
AUDIT_PRUNE_SECONDS = env.int("AUDIT_PRUNE_SECONDS", default=24 * 60 * 60)
AUDIT_BEAT_SCHEDULE: dict = {
    "audit-prune": {"task": "audit.tasks.audit_prune_expired", "schedule": float(AUDIT_PRUNE_SECONDS)},
}
# ``manage.py flush`` empties every table; on PostgreSQL the audit table refuses TRUNCATE
# (audit/models.py), so a flush fails unless this lets it through. On for the test suite, whose
# transactional tests flush between tests; off everywhere else.
AUDIT_FLUSH_ALLOWED = env.bool("AUDIT_FLUSH_ALLOWED", default=False)
