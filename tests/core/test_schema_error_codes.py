"""Every error code a view can raise is documented in its operation's schema responses.

What a view can raise is found by reading the code, not by a list kept beside it: starting from
the view method, every function it calls in the project's own modules is parsed (``ast``) and
followed, and every ``raise`` of an ``ApplicationError`` subclass gives a status and a code (the
class's, or a ``code=`` argument: a literal or a module constant). ``raise invalid_field(...)``
raises what that project function returns, read with the call's arguments. A code computed at
run time (the join-window reasons) gives its status only; one an enclosing ``except`` swallows
is left out, and so are the host and participant refusals behind the staff-role-only console. The schema, generated in-process as ``/api/schema/`` serves it, must name
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
from types import SimpleNamespace
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator
from rest_framework.views import APIView

from core.exceptions import ApplicationError

PROJECT_PACKAGES = (
    "accounts",
    "audit",
    "core",
    "sessions",
    "video_calls",
    "presence",
    "messaging",
    "realtime",
    "staff",
)
CHECKED_MODULES = (
    "video_calls.apis.calls",
    "video_calls.apis.history",
    "presence.apis",
    "messaging.apis",
    "messaging.attachment_apis",
    "sessions.apis",
    "accounts.apis",
    "realtime.apis",
    "audit.apis",
    "staff.apis",
)
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


def _text(node: ast.expr, namespace: dict[str, Any], bound: dict[str, Any]) -> str | None:
    """The string ``node`` stands for: a literal, a parameter bound to one, or a module constant
    (``code=SCHEDULE_CONFLICT``); None when only the run time knows it."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.Name) and node.id in bound:
        return bound[node.id] if isinstance(bound[node.id], str) else None
    value = _resolve(node, namespace)
    return value if isinstance(value, str) else None


def _code_argument(call: ast.Call, namespace: dict[str, Any], bound: dict[str, Any]) -> tuple[bool, str | None]:
    for keyword in call.keywords:
        if keyword.arg == "code":
            return True, _text(keyword.value, namespace, bound)
    return False, None


def _built_error(call: ast.Call, namespace: dict[str, Any], bound: dict[str, Any]) -> set[Raised]:
    """What ``call`` builds, when it builds an error: an ``ApplicationError`` subclass called
    directly, or a project function that returns one (``raise invalid_field(...,
    error_code="CANNOT_CALL_SELF")``), read through its ``return`` with the call's literal
    arguments bound to its parameters."""
    target = _resolve(call.func, namespace)
    if isinstance(target, type) and issubclass(target, ApplicationError):
        given, code = _code_argument(call, namespace, bound)
        return {(target.status, code if given else target.code)}
    if not _is_project_function(target):
        return set()
    factory = inspect.unwrap(target)
    arguments = {}
    parameters = inspect.signature(factory).parameters
    for parameter in parameters.values():
        if parameter.default is not inspect.Parameter.empty:
            arguments[parameter.name] = parameter.default
    for name, value in zip(parameters, call.args, strict=False):
        arguments[name] = _text(value, namespace, bound)
    for keyword in call.keywords:
        if keyword.arg is not None:
            arguments[keyword.arg] = _text(keyword.value, namespace, bound)
    factory_namespace = {**factory.__globals__, **_closure(factory)}
    built: set[Raised] = set()
    for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(factory)))):
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Call):
            built |= _built_error(node.value, factory_namespace, arguments)
    return built


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
    caught = _caught(tree, namespace)
    found: set[Raised] = set()
    for node in ast.walk(tree):
        raised: set[Raised] = set()
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc
            if isinstance(exc, ast.Name) and exc.id in built:
                exc = built[exc.id]
            if isinstance(exc, ast.Call):
                raised = _built_error(exc, namespace, {})
            else:
                error_class = _resolve(exc, namespace)
                if isinstance(error_class, type) and issubclass(error_class, ApplicationError):
                    raised = {(error_class.status, error_class.code)}
        elif isinstance(node, ast.Call):
            target = _resolve(node.func, namespace)
            if _is_project_function(target) and inspect.unwrap(target) is not function:
                raised = set(raised_by(target))
        found |= raised - caught.get(id(node), set())
    return frozenset(found)


def _caught(tree: ast.AST, namespace: dict[str, Any]) -> dict[int, set[Raised]]:
    """For each node inside a ``try`` body, the (status, code) its ``except`` clauses swallow.

    ``attachment_name`` calls ``decrypt_body``, which raises ``MESSAGE_UNREADABLE``, inside
    ``try: ... except BodyUnreadable: return None``: the download never answers that code. Only
    clauses naming ``ApplicationError`` subclasses count, each as its class's own status and code
    (a subclass raised with another ``code=`` is still reported), and a clause that re-raises
    (a bare ``raise``) swallows nothing."""
    caught: dict[int, set[Raised]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        swallowed: set[Raised] = set()
        for handler in node.handlers:
            if handler.type is None or any(
                isinstance(inner, ast.Raise) and inner.exc is None for inner in ast.walk(handler)
            ):
                continue
            names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
            for name in names:
                error_class = _resolve(name, namespace)
                if isinstance(error_class, type) and issubclass(error_class, ApplicationError):
                    swallowed.add((error_class.status, error_class.code))
        for statement in node.body:
            for inner in ast.walk(statement):
                caught.setdefault(id(inner), set()).update(swallowed)
    return caught


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


# The call rules let the staff role step in everywhere: ``can_host`` is true for it, and
# ``call_end`` refuses a non-participant only without it. Behind ``IsClinicStaff`` (the staff role
# only) these refusals cannot be answered.
STAFF_ROLE_NEVER_REFUSED = frozenset({(403, "NOT_HOST"), (403, "NOT_PARTICIPANT")})


def answerable(view_class: type[APIView], method: str) -> frozenset[Raised]:
    """What the view's method may answer: what it may raise, less the refusals the call rules
    never give the staff role when the view admits that role only."""
    from staff.permissions import IsClinicStaff

    raised = raised_by(getattr(view_class, method))
    if IsClinicStaff in view_class.permission_classes:
        return raised - STAFF_ROLE_NEVER_REFUSED
    return raised


# --- The checks --------------------------------------------------------------------------------------

OPERATIONS = checked_operations()


def test_every_checked_module_has_views():
    modules = {view_class.__module__ for _, _, view_class in OPERATIONS}

    assert modules == set(CHECKED_MODULES)
    assert len(OPERATIONS) >= 80


@pytest.mark.parametrize(
    ("path", "method", "view_class"), OPERATIONS, ids=[f"{method} {path}" for path, method, _ in OPERATIONS]
)
def test_every_code_a_view_can_raise_is_in_its_schema(path, method, view_class):
    operation = schema()["paths"][path][method]

    missing = undocumented(answerable(view_class, method), operation)

    assert missing == [], f"{method.upper()} {path} can answer {missing}, which its schema does not name"


def test_the_reading_finds_what_a_view_is_known_to_raise():
    from video_calls.apis.calls import CallAcceptApi, CallInitiateApi, CallJoinApi

    assert {(404, "CALL_NOT_FOUND"), (403, "NOT_CALLEE"), (409, "INVALID_CALL_STATE")} <= raised_by(CallAcceptApi.post)
    assert {(404, "USER_NOT_FOUND"), (409, "CALLEE_BUSY"), (400, "CANNOT_CALL_SELF")} <= raised_by(CallInitiateApi.post)
    # the join-window refusal's code is the decision's reason, known at run time only
    assert {(409, "ROOM_FULL"), (403, "INVALID_PASSCODE"), (409, None)} <= raised_by(CallJoinApi.post)


def test_the_reading_finds_what_views_of_every_checked_module_are_known_to_raise():
    from accounts.apis import PhoneVerifyApi, TokenRefreshApi
    from messaging.apis import MessageDeleteApi, MessageSendApi
    from messaging.attachment_apis import AttachmentDownloadApi
    from sessions.apis import PaymentWebhookApi, SessionListCreateApi
    from staff.apis import CallParticipantRemoveApi
    from video_calls.apis.history import CallDetailApi

    assert (401, "TOKEN_INVALID") in raised_by(TokenRefreshApi.post)
    assert (400, "INVALID_VERIFICATION_CODE") in raised_by(PhoneVerifyApi.post)
    # ``code=SCHEDULE_CONFLICT`` names a module constant, and ``raise _schedule_conflict(...)``
    # raises what a project function returns: both are read through.
    assert {(409, "SCHEDULE_CONFLICT"), (400, "START_IN_PAST")} <= raised_by(SessionListCreateApi.post)
    assert (400, "WEBHOOK_SIGNATURE_INVALID") in raised_by(PaymentWebhookApi.post)
    assert {(409, "CLIENT_MESSAGE_ID_REUSED"), (404, "CONVERSATION_NOT_FOUND")} <= raised_by(MessageSendApi.post)
    assert (409, "DELETE_WINDOW_PASSED") in raised_by(MessageDeleteApi.delete)
    assert (500, "ATTACHMENT_UNREADABLE") in raised_by(AttachmentDownloadApi.get)
    assert (404, "CALL_NOT_FOUND") in raised_by(CallDetailApi.get)
    assert (409, "CANNOT_REMOVE_SELF") in raised_by(CallParticipantRemoveApi.post)


def test_the_staff_role_is_never_refused_as_host_or_participant_behind_the_console():
    """The staff console admits the staff role only (``IsClinicStaff``), whom the call rules
    let end any call and host any room: ``NOT_HOST`` and ``NOT_PARTICIPANT``, which the shared
    call services raise for others, are read but not answerable there; a call view for
    everyone still answers them."""
    from staff.apis import CallEndApi as StaffCallEndApi
    from staff.apis import CallParticipantRemoveApi
    from video_calls.apis.calls import CallEndApi
    from video_calls.services.common import can_host

    assert can_host(call=SimpleNamespace(host_id=1), user=SimpleNamespace(pk=2, is_clinic_staff=True))
    assert not can_host(call=SimpleNamespace(host_id=1), user=SimpleNamespace(pk=2, is_clinic_staff=False))
    assert raised_by(StaffCallEndApi.post) >= STAFF_ROLE_NEVER_REFUSED
    assert not STAFF_ROLE_NEVER_REFUSED & answerable(StaffCallEndApi, "post")
    assert (403, "NOT_HOST") in raised_by(CallParticipantRemoveApi.post)
    assert not STAFF_ROLE_NEVER_REFUSED & answerable(CallParticipantRemoveApi, "post")
    assert (403, "NOT_HOST") in answerable(CallEndApi, "post")


def test_the_reading_leaves_out_a_code_the_caller_catches():
    """``attachment_name`` calls ``decrypt_body`` (``MESSAGE_UNREADABLE``) inside ``try: ...
    except BodyUnreadable: return None``, so the download never answers that code; a function
    that does not catch it still reports it."""
    from messaging.attachment_apis import AttachmentDownloadApi
    from messaging.encryption import decrypt_body
    from messaging.services.attachments import attachment_name

    assert (500, "MESSAGE_UNREADABLE") in raised_by(decrypt_body)
    assert (500, "MESSAGE_UNREADABLE") not in raised_by(attachment_name)
    assert (500, "MESSAGE_UNREADABLE") not in raised_by(AttachmentDownloadApi.get)


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
