"""Records every audited request in the trail: one entry, in the request's own transaction.

Audited are the routes under ``/api/v1/`` (audit/specs.py says which are exempt and how the rest
are named) and the admin's model pages. For each one:

1. a request that may write (not ``GET``/``HEAD``) runs in a transaction, joining one that is
   already open; a read runs as it would anyway, and so does a view that commits in a durable
   transaction of its own (``AuditSpec.in_request_transaction``);
2. when the view answers below 400, the entry (outcome ``allowed``) is inserted inside that
   transaction, so an action that rolls back takes its entry with it, and an entry that cannot
   be written takes the action with it;
3. when the view refuses (401, 403, 404, 429: ``denied``) or fails (any other 4xx or 5xx, or an
   exception: ``failed``), the entry is inserted after the transaction, so the attempt is kept
   although nothing it did is. A 503 (a dependency down, core/outages.py) leaves no entry.

Placed last in ``MIDDLEWARE``: it calls the view itself from ``process_view``, after every other
middleware has run its own ``process_view`` (CSRF among them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, transaction
from django.http import Http404, HttpRequest, HttpResponse
from rest_framework.throttling import BaseThrottle

from audit.models import AuditAction, AuditOutcome
from audit.services import audit_record
from audit.specs import UNAUDITED_METHODS, AuditSpec, spec_for_route
from core.outages import outage_of
from core.request_context import request_id_var

logger = logging.getLogger(__name__)

_READ_METHODS = frozenset({"GET", "HEAD"})
_DENIED_STATUSES = frozenset({401, 403, 404, 429})
_ADMIN_PAGES = {"changelist", "add", "change", "delete", "history"}
_ip_of = BaseThrottle().get_ident  # REMOTE_ADDR, or X-Forwarded-For behind NUM_PROXIES proxies


@dataclass(frozen=True)
class _Target:
    spec: AuditSpec
    route: str
    object_id: str
    admin_page: str = ""


def _target_of(request: HttpRequest) -> _Target | None:
    match = request.resolver_match
    if match is None or request.method in UNAUDITED_METHODS or not match.url_name:
        return None
    if match.route.startswith("api/v1/"):
        spec = spec_for_route(match.url_name)
        if spec is None:
            return None
        id_kwarg = spec.id_kwarg or next((name for name in match.kwargs if name.endswith("_id")), None)
        return _Target(spec, match.url_name, str(match.kwargs.get(id_kwarg, "")) if id_kwarg else "")
    if match.namespace == "admin":
        # admin/<app_label>/<model_name>/...; url_name ends with the page: <app>_<model>_change
        parts = match.route.split("/")
        page = match.url_name.rsplit("_", 1)[-1]
        if len(parts) < 3 or page not in _ADMIN_PAGES:
            return None
        spec = AuditSpec(f"{parts[1]}.{parts[2]}", record_type=f"{parts[1]}.{parts[2]}")
        return _Target(spec, f"admin:{match.url_name}", str(match.kwargs.get("object_id", "")), admin_page=page)
    return None


def _items_of(data: Any) -> list[Any] | None:
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        return data["results"]
    if isinstance(data, list):
        return data
    return None


def _ids_of(items: list[Any]) -> list[Any]:
    return [
        item.get("id", item.get("user_id")) if isinstance(item, dict) else getattr(item, "pk", None) for item in items
    ]


def _describe(request: HttpRequest, target: _Target, response: HttpResponse | None) -> dict[str, Any]:
    """Action, object id and listed ids of an API or admin request, from its URL and answer."""
    spec, method = target.spec, request.method or ""
    object_id, record_ids = target.object_id, []
    if target.admin_page:
        context = getattr(response, "context_data", None) or {}
        if target.admin_page == "changelist" and method == "POST":
            record_ids = request.POST.getlist(ACTION_CHECKBOX_NAME)
            deleting = request.POST.get("action") == "delete_selected" and request.POST.get("post") == "yes"
            action = AuditAction.DELETE if deleting else AuditAction.UPDATE
        elif target.admin_page == "changelist":
            action = AuditAction.LIST
            if context.get("cl") is not None:
                record_ids = _ids_of(list(context["cl"].result_list))
        else:
            action = {
                "add": AuditAction.CREATE,
                "change": AuditAction.UPDATE,
                "delete": AuditAction.DELETE,
                "history": AuditAction.READ,
            }[target.admin_page]
            if method in _READ_METHODS:
                action = AuditAction.READ
        return {"action": action, "object_id": object_id, "record_ids": record_ids}

    data = getattr(response, "data", None)
    items = _items_of(data)
    if method in spec.actions:
        action = spec.actions[method]
    elif method in _READ_METHODS:
        # A refused list has no page to look at: a route naming a record type is a list.
        is_list = items is not None or (not object_id and bool(spec.record_type))
        action = AuditAction.LIST if is_list else AuditAction.READ
    elif method == "DELETE":
        action = AuditAction.DELETE
    elif method == "POST" and not object_id:
        action = AuditAction.CREATE
    else:
        action = AuditAction.UPDATE
    if items is not None and method in _READ_METHODS:
        record_ids = _ids_of(items)
    if not object_id and action == AuditAction.CREATE and isinstance(data, dict):
        object_id = data.get("id", "")
    return {"action": action, "object_id": object_id, "record_ids": record_ids}


def _outcome_of(status_code: int, response: HttpResponse | None) -> str:
    if status_code in _DENIED_STATUSES:
        return AuditOutcome.DENIED
    if status_code >= 400:
        return AuditOutcome.FAILED
    context = getattr(response, "context_data", None) or {}
    if context.get("errors"):  # an admin form shown again with its errors: nothing was saved
        return AuditOutcome.FAILED
    return AuditOutcome.ALLOWED


def _record(request: HttpRequest, target: _Target, response: HttpResponse | None, status_code: int) -> None:
    user = getattr(request, "user", None)
    audit_record(
        actor=user,
        **_describe(request, target, response),
        object_type=target.spec.object_type,
        record_type=target.spec.record_type,
        outcome=_outcome_of(status_code, response),
        status_code=status_code,
        method=request.method or "",
        route=target.route,
        path=request.path,
        request_id=request_id_var.get(),
        ip_address=_ip_of(request),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
    )


class AuditMiddleware:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., HttpResponse], view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        target = _target_of(request)
        if target is None:
            return None
        # savepoint=False: inside a transaction already open, join it (its rollback is ours).
        joins = request.method not in _READ_METHODS and target.spec.in_request_transaction
        transaction_scope = transaction.atomic(savepoint=False) if joins else nullcontext()
        error: Exception | None = None
        response: HttpResponse | None = None
        with transaction_scope:
            try:
                response = view_func(request, *view_args, **view_kwargs)
            except Exception as exc:  # recorded below, then raised again
                error = exc
            else:
                if _outcome_of(response.status_code, response) == AuditOutcome.ALLOWED:
                    _record(request, target, response, response.status_code)
                    return response
        if isinstance(error, Http404):
            status_code = 404
        elif isinstance(error, PermissionDenied):
            status_code = 403
        elif error is not None:
            status_code = 500
        else:
            status_code = response.status_code
        if status_code == 503 or (error is not None and outage_of(error) is not None):
            # A dependency is down and nothing was done. When it is the database, the entry could
            # not be written either, and trying would double the wait of an answer that must be fast.
            if error is not None:
                raise error
            return response
        try:
            _record(request, target, response, status_code)
        except DatabaseError:
            # The database is what failed: the answer (503 or 500) still goes out.
            logger.warning("Could not record a %s attempt on %s in the audit trail", status_code, target.route)
        if error is not None:
            raise error
        return response
