"""PostgreSQL only: no two non-cancelled sessions of the same doctor, or of the same patient, may
have overlapping blocked ranges ``[scheduled_start, blocked_until)``.

``blocked_until`` already includes the booking buffer, so two ranges overlap exactly when the gap
between the sessions is shorter than the buffer. The constraint is what makes concurrent bookings
safe: the second insert waits for the first transaction and then fails with an exclusion
violation, which the booking service answers as 409 SCHEDULE_CONFLICT. Other databases (SQLite in
development) rely on the service's transactional check alone.
"""

from django.db import migrations

CONSTRAINTS = {
    "consultations_session_doctor_no_overlap": "doctor_id",
    "consultations_session_patient_no_overlap": "patient_id",
}


def create_exclusion_constraints(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # btree_gist lets a GiST index compare the uuid participant column with "=".
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    for name, column in CONSTRAINTS.items():
        schema_editor.execute(
            f"ALTER TABLE consultations_session ADD CONSTRAINT {name} EXCLUDE USING gist "
            f"({column} WITH =, tstzrange(scheduled_start, blocked_until, '[)') WITH &&) "
            "WHERE (status <> 'cancelled')"
        )


def drop_exclusion_constraints(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in CONSTRAINTS:
        schema_editor.execute(f"ALTER TABLE consultations_session DROP CONSTRAINT IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("consultations", "0002_session_attendance_payments"),
    ]

    operations = [
        migrations.RunPython(create_exclusion_constraints, drop_exclusion_constraints),
    ]
