"""What the pages of Graph runs share (directory sync, status sync, reconcile): the recent runs,
polled while one is running, and the button that starts one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.db.models import Model, QuerySet
from django.http import HttpResponse
from django.shortcuts import render

from graph.models import TenantConnection
from portal import access
from portal.audit import Actor
from portal.http import AuthenticatedHttpRequest

RECENT = 20


def runs_page(
    request: AuthenticatedHttpRequest,
    template: str,
    runs: QuerySet[Any],
    *,
    update_permission: str,
    **extra: Any,
) -> HttpResponse:
    """``template`` with the recent ``runs``; htmx polling gets its ``runs`` partial alone."""
    context = {
        "runs": runs[:RECENT],
        "connection": TenantConnection.current(),
        "can_sync": access.has_perm(request.user, update_permission),
        "nav_active": "tenant",
        **extra,
    }
    return render(request, f"{template}#runs" if request.htmx else template, context)


def start_run[R: Model](
    request: AuthenticatedHttpRequest,
    start: Callable[[Actor], tuple[R, bool]],
    *,
    started: str,
    running: str,
) -> R:
    """Start a run (or find the one running) and say which; the run."""
    run, was_started = start(Actor.from_request(request))
    if was_started:
        messages.success(request, started)
    else:
        messages.info(request, running)
    return run
