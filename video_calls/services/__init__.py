"""Call writes: the one state machine and everything that changes a call (see submodules)."""
