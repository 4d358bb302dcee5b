"""Messaging writes: conversations (``conversations``), messages (``messages``), receipts
(``receipts``) and contacts (``contacts``). Each is a keyword-only, atomic domain action that
REST, the socket and tasks share; events go out after commit (core.events)."""
