"""Querysets compiled to SQL once, for the few statements every client runs as it sets up.

Building a queryset and compiling it costs Django 1 to 4 ms of CPU per statement on a small server,
several times what PostgreSQL takes to answer it (docs/performance.md, "Surge"): on the hour,
when every client of every call joins at once, that compilation was the largest part of the
server's work. ``CompiledQuery`` builds its queryset once, with stand-in values, keeps the SQL
Django compiled for it, and runs that SQL with the real values through ``Manager.raw()``. The
query is still written once, with the ORM, in the selector that says what it means (which calls
are a user's own); only its compilation is skipped.

What it takes: parameters that are UUIDs (the ids the set-up looks up), and a queryset of the
model's own columns (``raw()`` cannot fill ``select_related`` objects: the builder is refused at
compilation if it asks for them). The SQL is compiled for the default database when first used.
"""

import uuid
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.db import models
from django.db.models.query import RawQuerySet

M = TypeVar("M", bound=models.Model)


class CompiledQuery(Generic[M]):
    """``build(**stand_ins)`` compiled once; ``first(**values)`` runs it with ``values``.

    ``parameters`` name the builder's keyword arguments, each a UUID. Every stand-in must appear
    among the compiled query's parameters (checked when it compiles); any other parameter of the
    query (a status it filters on) is a constant of it and kept as compiled."""

    def __init__(self, build: Callable[..., models.QuerySet[M]], *parameters: str) -> None:
        self.build = build
        self.parameters = parameters
        self._compiled: tuple[type[M], str, list[Callable[[dict[str, uuid.UUID]], Any]]] | None = None

    def all(self, **values: Any) -> RawQuerySet:
        """The rows of the query run with ``values``, in the builder's order."""
        model, sql, params = self._compiled or self._compile()
        ids = {name: value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)) for name, value in values.items()}
        return model._default_manager.raw(sql, [param(ids) for param in params])

    def first(self, **values: Any) -> M | None:
        """The first row of the query run with ``values`` (by the builder's own order), or None."""
        for row in self.all(**values):
            return row
        return None

    def exists(self, **values: Any) -> bool:
        """Whether the query run with ``values`` has a row: a builder narrowed to its primary key
        and one row (``.only("pk")[:1]``) reads no more than ``QuerySet.exists()`` would."""
        return self.first(**values) is not None

    def _compile(self) -> tuple[type[M], str, list[Callable[[dict[str, uuid.UUID]], Any]]]:
        stand_ins = {name: uuid.uuid4() for name in self.parameters}
        queryset = self.build(**stand_ins)
        if queryset.query.select_related:
            raise ValueError("A compiled query cannot fill related objects (select_related): raw() reads one model.")
        sql, compiled_params = queryset.query.sql_with_params()
        params: list[Callable[[dict[str, uuid.UUID]], Any]] = []
        unused = set(self.parameters)
        for value in compiled_params:
            params.append(_parameter(value, stand_ins))
            unused -= {name for name, stand_in in stand_ins.items() if value in (stand_in, stand_in.hex)}
        if unused:
            raise ValueError(f"The compiled query does not use {', '.join(sorted(unused))}.")
        self._compiled = (queryset.model, sql, params)
        return self._compiled


def _parameter(value: Any, stand_ins: dict[str, uuid.UUID]) -> Callable[[dict[str, uuid.UUID]], Any]:
    """How to fill one compiled parameter: with a value as the database takes it (a UUID on
    PostgreSQL, its hex digits where UUIDs are text), or the query's own constant."""
    for name, stand_in in stand_ins.items():
        if value == stand_in:
            return lambda ids: ids[name]
        if value == stand_in.hex:
            return lambda ids: ids[name].hex
    return lambda ids: value
