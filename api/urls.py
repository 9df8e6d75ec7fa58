from __future__ import annotations

from django.urls import path

from api import views

app_name = "api_pages"

urlpatterns = [
    path("", views.tokens, name="tokens"),
    path("new", views.token_new, name="token_new"),
    path("<uuid:code>/revoke", views.token_revoke, name="token_revoke"),
    path("applications/new", views.application_new, name="application_new"),
    path("applications/<uuid:code>/revoke", views.application_revoke, name="application_revoke"),
]
