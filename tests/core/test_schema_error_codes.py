"""Every error code a view can raise is documented in its operation's schema responses.

What a view can raise is found by reading the code, not by a list kept beside it: starting from
the view method, every function it calls in the project's own modules is parsed (``ast``) and
followed, and every ``raise`` of an ``ApplicationError`` subclass gives a status and a code (the
class's, or a literal ``code=`` argument). A code computed at run time (the join-window reasons)
gives its status only. The schema, generated in-process as ``/api/schema/`` serves it, must name
each found code in the description of that status (``core.schema.error_codes``), and have every
found status.

It cannot pass by finding nothing: the views checked are every view of the URL configuration in
the modules below (a view whose source cannot be read fails), known codes of known views must be
found, and the checker must report a code removed from a schema.
"""

import ast
import builtins
import inspect
import re
import textwrap
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator
from rest_framework.views import APIView

from core.exceptions import ApplicationError

PROJECT_PACKAGES = ("accounts", "core", "sessions", "video_calls", "presence", "messaging", "realtime")
CHECKED_MODULES = ("video_calls.apis.calls", "presence.apis")
HTTP_METHODS = ("get", "post", "put", "patch", "delete")

Raised = tuple[int, str | None]  # (status, code); code None when computed at run time


# --- Reading the code -----------------------------------------------------------------------------


def _resolve(node: ast.expr, namespace: dict[str, Any]) -> Any:
    """The object a name or dotted name refers to in ``namespace``, or None."""
    if isinstance(node, ast.Name):
        return namespace.get(node.id, getattr(builtins, node.id, None))
    if isinstance(node, ast.Attribute):
        owner = _resolve(node.value, namespace)
        return getattr(owner, node.attr, None) if owner is not None else None
    return None


def _is_project_function(target: Any) -> bool:
    return inspect.isfunction(target) and target.__module__.split(".")[0] in PROJECT_PACKAGES


def _code_argument(call: ast.Call) -> tuple[bool, str | None]:
    for keyword in call.keywords:
        if keyword.arg == "code":
            if isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, str):
                return True, keyword.value.value
            return True, None
    return False, None


@cache
def raised_by(function: Callable) -> frozenset[Raised]:
    """Every (status, code) ``function`` or a project function it calls may raise."""
    function = inspect.unwrap(function)
    source = textwrap.dedent(inspect.getsource(function))
    namespace = {**function.__globals__, **_closure(function)}
    tree = ast.parse(source)
    # ``error = JoinRefused(..., code=reason)`` then ``raise error``: the raise names a variable.
    built = {
        node.targets[0].id: node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Call)
    }
    found: set[Raised] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc
            if isinstance(exc, ast.Name) and exc.id in built:
                exc = built[exc.id]
            call = exc if isinstance(exc, ast.Call) else None
            error_class = _resolve(call.func if call else exc, namespace)
            if isinstance(error_class, type) and issubclass(error_class, ApplicationError):
                given, code = _code_argument(call) if call else (False, None)
                found.add((error_class.status, code if given else error_class.code))
        elif isinstance(node, ast.Call):
            target = _resolve(node.func, namespace)
            if _is_project_function(target) and inspect.unwrap(target) is not function:
                found |= raised_by(target)
    return frozenset(found)


def _closure(function: Callable) -> dict[str, Any]:
    names = function.__code__.co_freevars
    cells = function.__closure__ or ()
    return {name: cell.cell_contents for name, cell in zip(names, cells, strict=True)}


# --- The views ---------------------------------------------------------------------------------------


def _views(resolver: URLResolver, prefix: str = "") -> list[tuple[str, type[APIView]]]:
    views = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            views += _views(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            view_class = getattr(entry.callback, "cls", None)
            if view_class is not None and view_class.__module__ in CHECKED_MODULES:
                views.append((prefix + str(entry.pattern), view_class))
    return views


def checked_operations() -> list[tuple[str, str, type[APIView]]]:
    """(path as the schema writes it, method, view class) of every checked view."""
    operations = []
    for route, view_class in _views(get_resolver()):
        path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
        for method in HTTP_METHODS:
            if hasattr(view_class, method):
                operations.append((path, method, view_class))
    return operations


@cache
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def documented(operation: dict) -> dict[int, set[str]]:
    """The error statuses of an operation and the codes each one's description names (words like
    ``CALL_NOT_FOUND``: upper case with an underscore)."""
    return {
        int(status): set(re.findall(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b", response.get("description", "")))
        for status, response in operation["responses"].items()
        if int(status) >= 400
    }


def undocumented(raised: frozenset[Raised], operation: dict) -> list[str]:
    """What ``raised`` has that ``operation`` does not document: ``"409"`` for a missing status,
    ``"409 ROOM_FULL"`` for a code its status does not name."""
    statuses = documented(operation)
    missing = []
    for status, code in sorted(raised, key=lambda item: (item[0], item[1] or "")):
        if status not in statuses:
            missing.append(str(status))
        elif code is not None and code not in statuses[status]:
            missing.append(f"{status} {code}")
    return sorted(set(missing))


# --- The checks --------------------------------------------------------------------------------------

OPERATIONS = checked_operations()


def test_every_checked_module_has_views():
    modules = {view_class.__module__ for _, _, view_class in OPERATIONS}

    assert modules == set(CHECKED_MODULES)
    assert len(OPERATIONS) >= 25


@pytest.mark.parametrize(
    ("path", "method", "view_class"), OPERATIONS, ids=[f"{method} {path}" for path, method, _ in OPERATIONS]
)
def test_every_code_a_view_can_raise_is_in_its_schema(path, method, view_class):
    operation = schema()["paths"][path][method]

    missing = undocumented(raised_by(getattr(view_class, method)), operation)

    assert missing == [], f"{method.upper()} {path} can answer {missing}, which its schema does not name"


def test_the_reading_finds_what_a_view_is_known_to_raise():
    from video_calls.apis.calls import CallAcceptApi, CallInitiateApi, CallJoinApi

    assert {(404, "CALL_NOT_FOUND"), (403, "NOT_CALLEE"), (409, "INVALID_CALL_STATE")} <= raised_by(CallAcceptApi.post)
    assert {(404, "USER_NOT_FOUND"), (409, "CALLEE_BUSY"), (400, "CANNOT_CALL_SELF")} <= raised_by(CallInitiateApi.post)
    # the join-window refusal's code is the decision's reason, known at run time only
    assert {(409, "ROOM_FULL"), (403, "INVALID_PASSCODE"), (409, None)} <= raised_by(CallJoinApi.post)


def test_the_check_reports_a_code_or_status_the_schema_leaves_out():
    operation = schema()["paths"]["/api/v1/calls/{call_id}/accept/"]["post"]
    raised = raised_by(__import__("video_calls.apis.calls").apis.calls.CallAcceptApi.post)
    without_code = {
        "responses": {
            **operation["responses"],
            "403": {"description": operation["responses"]["403"]["description"].replace("`NOT_CALLEE`", "")},
        }
    }
    without_409 = {"responses": {k: v for k, v in operation["responses"].items() if k != "409"}}

    assert undocumented(raised, operation) == []
    assert undocumented(raised, without_code) == ["403 NOT_CALLEE"]
    assert "409" in undocumented(raised, without_409)
