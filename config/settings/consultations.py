"""Booking, join-window and payment rules of consultation sessions (the ``sessions`` app)."""

CONSULTATIONS_BEAT_SCHEDULE: dict = {}
