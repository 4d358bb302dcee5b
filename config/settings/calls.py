"""Video calls: media servers (STUN/TURN, Agora), room limits and call timeouts."""

CALLS_BEAT_SCHEDULE: dict = {}
