"""Querysets compiled to SQL once, for the few statements every client runs as it sets up.

Building a queryset, compiling it and turning its rows into objects costs Django 1 to 4 ms of CPU
per statement on a small server, several times what PostgreSQL takes to answer it
(docs/performance.md, "Surge"): on the hour, when every client of every call joins at once, that
was the largest part of the server's work. ``CompiledQuery`` builds its queryset once, with
stand-in ids, keeps what Django's compiler made of it (the SQL, where each value goes, how each
column is converted and which object it fills, ``select_related`` included), and then runs that
SQL with the real ids. The query is still written once, with the ORM, in the selector that says
what it means (which calls are a user's own); only the work Django repeats for every run is done
once.

Steps, as Django's own ``ModelIterable`` takes them (``django/db/models/query.py``):

1. Build the queryset with a random UUID for each parameter and compile it for the default
   database: the SQL, its parameters, the selected columns, the converters of those columns and
   the related populators ``select_related`` asked for.
2. Find each stand-in among the compiled parameters (as a UUID, or as its hex digits where the
   database keeps UUIDs as text); every other parameter is a constant of the query and is kept.
3. To run: execute the SQL with the real ids in the stand-ins' places, convert each row's columns
   and build the model instance from them with ``Model.from_db``, then its related objects.

Compiler attributes that are not public API are read (``select``, ``klass_info``, ``col_count``,
``annotation_col_map``, ``get_converters``, ``get_related_populators``), and ``prefetched`` fills
a prefetch cache as Django's prefetch does. ``VERIFIED_DJANGO`` names the release this was read
against: ``tests/core/test_compiled.py`` fails on another one (read ``ModelIterable`` again, then
update it), and whenever a compiled query and its queryset disagree, on SQLite and PostgreSQL.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models.query import get_related_populators

M = TypeVar("M", bound=models.Model)

VERIFIED_DJANGO = "5.2"

Filler = Callable[[dict[str, uuid.UUID]], Any]


@dataclass(frozen=True)
class _Compiled:
    model: type[models.Model]
    sql: str
    fillers: list[Filler]
    init_list: list[str]  # the attribute names of the model's own columns, in select order
    own_columns: slice
    converters: dict[int, tuple[list[Callable], Any]]  # column position: (converters, expression)
    related_populators: list[Any]


class CompiledQuery(Generic[M]):
    """``build(**stand_ins)`` compiled once; ``all(**values)`` and ``first(**values)`` run it.

    ``parameters`` name the builder's keyword arguments, each a UUID (or its text); every one
    must reach the compiled query (checked when it compiles)."""

    def __init__(self, build: Callable[..., models.QuerySet[M]], *parameters: str) -> None:
        self.build = build
        self.parameters = parameters
        self._compiled: _Compiled | None = None

    def all(self, **values: Any) -> list[M]:
        """The rows of the query run with ``values``, in the builder's order, as model instances."""
        compiled = self._compiled or self._compile()
        ids = {name: value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)) for name, value in values.items()}
        connection = connections[DEFAULT_DB_ALIAS]
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, [fill(ids) for fill in compiled.fillers])
            rows = cursor.fetchall()
        objects = []
        for fetched in rows:
            row = _converted(fetched, compiled.converters, connection) if compiled.converters else fetched
            obj = compiled.model.from_db(DEFAULT_DB_ALIAS, compiled.init_list, row[compiled.own_columns])
            for populator in compiled.related_populators:
                populator.populate(row, obj)
            objects.append(obj)
        return objects

    def first(self, **values: Any) -> M | None:
        """The first row of the query run with ``values`` (by the builder's own order), or None."""
        rows = self.all(**values)
        return rows[0] if rows else None

    def exists(self, **values: Any) -> bool:
        """Whether the query run with ``values`` has a row: a builder narrowed to its primary key
        and one row (``.only("pk")[:1]``) reads no more than ``QuerySet.exists()`` would."""
        return bool(self.all(**values))

    def _compile(self) -> _Compiled:
        stand_ins = {name: uuid.uuid4() for name in self.parameters}
        compiler = self.build(**stand_ins).query.get_compiler(using=DEFAULT_DB_ALIAS)
        sql, compiled_params = compiler.as_sql()  # fills compiler.select and klass_info
        if compiler.annotation_col_map:
            raise ValueError("A compiled query reads model columns only, not annotations.")
        fillers = [_filler(value, stand_ins) for value in compiled_params]
        unused = {
            name
            for name, stand_in in stand_ins.items()
            if not any(value in (stand_in, stand_in.hex) for value in compiled_params)
        }
        if unused:
            raise ValueError(f"The compiled query does not use {', '.join(sorted(unused))}.")
        select, klass_info = compiler.select, compiler.klass_info
        own = klass_info["select_fields"]
        own_columns = slice(own[0], own[-1] + 1)
        self._compiled = _Compiled(
            model=klass_info["model"],
            sql=sql,
            fillers=fillers,
            init_list=[column[0].target.attname for column in select[own_columns]],
            own_columns=own_columns,
            converters=compiler.get_converters([column[0] for column in select[: compiler.col_count]]),
            related_populators=get_related_populators(klass_info, select, DEFAULT_DB_ALIAS),
        )
        return self._compiled


def _filler(value: Any, stand_ins: dict[str, uuid.UUID]) -> Filler:
    """How to fill one compiled parameter: with an id as the database takes it (a UUID on
    PostgreSQL, its hex digits where UUIDs are text), or with the query's own constant."""
    for name, stand_in in stand_ins.items():
        if value == stand_in:
            return lambda ids: ids[name]
        if value == stand_in.hex:
            return lambda ids: ids[name].hex
    return lambda ids: value


def _converted(row: tuple, converters: dict[int, tuple[list[Callable], Any]], connection) -> list:
    """The row with each column converted as the compiler's ``apply_converters`` would."""
    row = list(row)
    for position, (functions, expression) in converters.items():
        value = row[position]
        for function in functions:
            value = function(value, expression, connection)
        row[position] = value
    return row


def prefetched(instance: models.Model, relation: str, objects: list) -> None:
    """Make ``instance.<relation>.all()`` answer ``objects`` without a query, as
    ``prefetch_related`` would have, for rows a compiled query read. Django's prefetch stores
    the same thing the same way (``prefetch_one_level``): the related manager's queryset with
    its result cache filled, under the relation's cache name."""
    queryset = getattr(instance, relation).all()
    queryset._result_cache = objects
    queryset._prefetch_done = True
    cache_name = getattr(type(instance), relation).field.remote_field.cache_name
    instance.__dict__.setdefault("_prefetched_objects_cache", {})[cache_name] = queryset
