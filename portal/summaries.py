"""Counts over whole tables (Home's tiles), computed once and reused until something changes.

Every service writes its audit event in the transaction of its change (``portal.audit``),
so the newest audit event is a clock that moves with any change: imports, deletes,
uploads, directory syncs. A kept value is reused while that clock stands still, and

- at most ``PORTAL_SUMMARY_MAX_AGE`` seconds (60) in any case, so counts by date (expiring
  within 7 days, expired) follow the calendar, and a change whose transaction commits after
  a later one's (its event has the lower id) shows then;
- at least ``PORTAL_SUMMARY_MIN_AGE`` seconds (10) even when the clock moved, so a stream of
  changes (an upload writes one event per certificate) costs one computation per interval,
  not one per view.

So a change shows within ``PORTAL_SUMMARY_MIN_AGE`` seconds, at once if nothing was computed
in that interval. Values are kept per process and per key; a key names whose view it is
(for example the scope tags an admin reads certificates through), so admins who see different
objects never share a value.

Rendered pieces of pages (``fragment``) are kept on the same clock but without a minimum age:
a piece is rendered again as soon as the clock moves, and kept only when every count it shows
was computed for that clock. See ``portal.lib.fragments``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe

from portal import access, context_processors
from portal.lib.fragments import CSRF_SLOT, Fragments, with_csrf_token
from portal.models import AuditEvent, User

# Keys are few (one per section and distinct scope); this bounds them anyway.
_MAX_KEPT = 512


@dataclass(frozen=True)
class _Kept:
    clock: Clock | None
    at: float
    value: Any


_kept: dict[str, _Kept] = {}


def _now() -> float:
    return time.monotonic()


# Events whose transactions commit after a later event's still move the clock when they are
# among this many of the newest ids (a transaction spanning more ids than that is rare; the
# maximum ages catch it).
LATE_COMMIT_WINDOW = 1000

Clock = tuple[int, str, int]


def change_clock() -> Clock | None:
    """The newest audit event (id and code: ids repeat after a rollback, codes do not), and how many
    events there are among the ``LATE_COMMIT_WINDOW`` newest ids: an event committed after a later
    one (with the lower id) changes that count, though not the newest id. One query on the index of
    ids, written out: it runs on every page, and building it through the ORM costs more than it."""
    with connection.cursor() as cursor:
        cursor.execute(clock_sql(), [LATE_COMMIT_WINDOW])
        row = cursor.fetchone()
    return None if row is None else clock_of(row)


@cache
def clock_sql() -> str:
    """``change_clock``'s query: one row of three columns, none when there are no events; its one
    parameter is ``LATE_COMMIT_WINDOW``."""
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    pk = connection.ops.quote_name(str(AuditEvent._meta.get_field("id").column))
    code = connection.ops.quote_name(str(AuditEvent._meta.get_field("code").column))
    return (
        f"SELECT n.{pk}, n.{code}, (SELECT COUNT(*) FROM {table} r WHERE r.{pk} > n.{pk} - %s) "
        f"FROM (SELECT {pk}, {code} FROM {table} ORDER BY {pk} DESC LIMIT 1) n"
    )


def clock_of(row: Sequence[Any]) -> Clock | None:
    """The clock in a row of ``clock_sql()`` (all NULL when there are no events)."""
    if row[0] is None:
        return None
    return (int(row[0]), str(row[1]).replace("-", ""), int(row[2]))


def request_clock(request: object) -> Clock | None:
    """``change_clock()`` read once per request, however many sections of a page ask for it.

    A page (GET or HEAD) takes the clock read with the signed-in admin (``portal.backends``): one
    round trip fewer. A request that may change something reads it when first asked, so that what
    it renders after its change is not kept under the clock from before it.
    """
    if not hasattr(request, "_summary_clock"):
        clock: object = _UNREAD
        if getattr(request, "method", None) in ("GET", "HEAD"):
            clock = getattr(getattr(request, "user", None), "_portal_change_clock", _UNREAD)
        request._summary_clock = change_clock() if clock is _UNREAD else clock  # type: ignore[attr-defined]
    found: Clock | None = request._summary_clock  # type: ignore[attr-defined]
    return found


_UNREAD = object()


def kept[T](key: str, clock: Clock | None, compute: Callable[[], T]) -> T:
    """The value kept under ``key`` if still fresh for ``clock`` (see the module), else ``compute()``."""
    return _kept_value(key, clock, compute)[0]


def kept_for[T](request: object, key: str, compute: Callable[[], T]) -> T:
    """``kept`` on the request's clock; notes on the request when the value is older than the clock,
    so that no piece of the page built from it is kept as current (``fragment``)."""
    value, current = _kept_value(key, request_clock(request), compute)
    if not current:
        request._summary_behind = True  # type: ignore[attr-defined]
    return value


def _kept_value[T](key: str, clock: Clock | None, compute: Callable[[], T]) -> tuple[T, bool]:
    now = _now()
    found = _kept.get(key)
    if found is not None:
        age = now - found.at
        if age < settings.PORTAL_SUMMARY_MAX_AGE and (
            found.clock == clock or age < settings.PORTAL_SUMMARY_MIN_AGE
        ):
            return found.value, found.clock == clock
    value = compute()
    if len(_kept) >= _MAX_KEPT:
        _kept.clear()
    # Timed from before computing, with the clock read before it: never younger than it is.
    _kept[key] = _Kept(clock, now, value)
    return value, True


_fragments = Fragments(max_entries=512, max_bytes=64 * 1024 * 1024)


def fragment(
    request: Any, name: str, render: Callable[[], str], *, params: Hashable = (), max_age: float | None = None
) -> str:
    """A rendered piece of a page, kept for every admin of the same scope until the data changes.

    Keyed by ``name`` and ``params`` (what the page was asked for), the request's clock, the
    viewer's scope (``access.viewer_key``) and today's date, and kept at most
    ``PORTAL_FRAGMENT_MAX_AGE`` seconds (or ``max_age``, when shorter: a piece that moves with time).
    ``render`` should render without the request (no CSRF token, nothing about the signed-in admin):
    see ``portal.lib.fragments``.
    """
    return _keep(request, _page_key(request, name, params), render, max_age=max_age)


def _page_key(request: Any, name: str, params: Hashable) -> Hashable:
    return (name, params, request_clock(request), access.viewer_key(request.user), timezone.localdate())


def _keep(request: Any, key: Hashable, render: Callable[[], str], *, max_age: float | None = None) -> str:
    limit = settings.PORTAL_FRAGMENT_MAX_AGE
    return _fragments.kept(
        key,
        render,
        max_age=limit if max_age is None else min(max_age, limit),
        keep=lambda: not getattr(request, "_summary_behind", False),
    )


# What the shell of a kept page shows in place of the signed-in admin's name and roles.
_NAME_SLOT = "signed-in-admin-name-slot"
_ROLES_SLOT = "signed-in-admin-roles-slot"


class _Shell:
    """The signed-in admin as the page's shell reads them, with slots for what is theirs alone."""

    is_authenticated = True
    label = _NAME_SLOT


def page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any] | Callable[[], dict[str, Any] | HttpResponseBase],
    *,
    params: Hashable,
    live: dict[str, Callable[[], str]] | None = None,
) -> HttpResponseBase:
    """A whole page, shell included, kept like ``fragment`` (the same keys, ``template`` and ``params``).

    The shell's context comes from ``portal.context_processors.shell``; what belongs to the signed-in
    admin alone (name, roles, CSRF token) is put in on each view. A page with messages to show is
    rendered as usual. Everything ``context`` holds must be the same for every admin of one scope.

    ``context`` may be a function, called only when the page is rendered (a kept page needs none of
    it); it may answer with a response instead (a form's errors), which is returned and not kept.
    ``live`` names pieces that move with time rather than with changes (a heartbeat's age): the page
    is kept with a slot for each (``{{ live.<name> }}`` in the template), filled on every view.
    """
    live = live or {}
    if len(messages.get_messages(request)):
        built = _built(context)
        if isinstance(built, HttpResponseBase):
            return built
        pieces = {name: mark_safe(piece()) for name, piece in live.items()}  # rendered by templates
        return render(request, template, built | {"live": pieces})
    key = _page_key(request, f"page:{template}", params)
    text = _fragments.peek(key, max_age=settings.PORTAL_FRAGMENT_MAX_AGE)
    if text is None:
        built = _built(context)
        if isinstance(built, HttpResponseBase):
            return built
        shell = context_processors.shell(request)

        def whole() -> str:
            slots = {name: mark_safe(live_slot(name)) for name in live}
            extra = {
                "admin_roles": [_ROLES_SLOT],
                "user": _Shell(),
                "messages": (),
                "csrf_token": CSRF_SLOT,
                "live": slots,
            }
            return render_to_string(template, shell | built | extra)

        text = _keep(request, key, whole)
    user = request.user
    label = str(getattr(user, "label", ""))
    roles = context_processors.admin_roles(user) if isinstance(user, User) and user.is_authenticated else []
    text = (
        with_csrf_token(text, request)
        .replace(_NAME_SLOT, escape(label))
        .replace(_ROLES_SLOT, escape(", ".join(roles) or "No role assigned"))
    )
    for name, piece in live.items():
        text = text.replace(live_slot(name), piece())
    return HttpResponse(text)


def _built(
    context: dict[str, Any] | Callable[[], dict[str, Any] | HttpResponseBase],
) -> dict[str, Any] | HttpResponseBase:
    return context() if callable(context) else context


def live_slot(name: str) -> str:
    """What a kept page holds in place of the live piece ``name`` (see ``page``)."""
    return f"live-piece-slot-{name}"


def forget() -> None:
    """Drop every kept value and piece (tests whose data is rolled back between them)."""
    _kept.clear()
    _fragments.forget()
