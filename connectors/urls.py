from __future__ import annotations

from django.urls import path
from django.views.generic import RedirectView

from connectors import views

app_name = "connectors"
urlpatterns = [
    path("", views.connector_list, name="list"),
    path("add/", views.token_create, name="add"),
    path("tokens/<uuid:code>/cancel/", views.token_cancel, name="token_cancel"),
    # The encryption keys page moved to Tenant administration > Encryption keys.
    path("keys/", RedirectView.as_view(pattern_name="certs:keys", permanent=True)),
    path("keys/rotate/", views.rotation_start, name="rotate"),
    path("rotations/<uuid:code>/", views.rotation_detail, name="rotation"),
    path("rotations/<uuid:code>/retry/", views.rotation_retry, name="rotation_retry"),
    path("<uuid:code>/", views.connector_detail, name="detail"),
    path("<uuid:code>/rename/", views.connector_rename, name="rename"),
    path("<uuid:code>/disable/", views.connector_state, {"action": "disable"}, name="disable"),
    path("<uuid:code>/enable/", views.connector_state, {"action": "enable"}, name="enable"),
    path("<uuid:code>/revoke/", views.connector_state, {"action": "revoke"}, name="revoke"),
    path("<uuid:code>/delete/", views.connector_delete, name="delete"),
]
