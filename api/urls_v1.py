"""``/api/v1/``: the API's routes, its OpenAPI description (``openapi.json``) and documentation (``docs``)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.urls import re_path

from api import problems
from api.main import api
from api.routes import audit, certificates, connectors, dropfolders, imports, keys, profiles, users

for _router in (
    certificates.router,
    imports.router,
    keys.router,
    connectors.router,
    profiles.router,
    users.router,
    audit.router,
    dropfolders.router,
):
    api.add_router("", _router)

urlpatterns, _app_name, _namespace = api.urls
app_name = _namespace  # "api", the namespace the API reverses its own URLs in
for _pattern in urlpatterns:
    # Each call authenticates itself with a bearer token, never the session; the description and
    # its documentation page hold nothing secret.
    _pattern.callback.login_required = False  # type: ignore[union-attr]


@login_not_required
def _no_such_path(request: HttpRequest, rest: str) -> HttpResponse:
    return problems.response(404, "not_found", "No such API path; see /api/v1/openapi.json.")


urlpatterns = [*urlpatterns, re_path(r"^(?P<rest>.*)$", _no_such_path)]
