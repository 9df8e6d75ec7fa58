from __future__ import annotations

from django.urls import path

from graph import views, views_intune, views_status

app_name = "graph"
urlpatterns = [
    path("", views.connection, name="connection"),
    path("edit/", views.connection_edit, name="connection_edit"),
    path("test/", views.connection_test, name="connection_test"),
    path("uploads/start/", views.upload_outstanding, name="upload_outstanding"),
    path("reconcile/", views.reconcile_report, name="reconcile"),
    path("reconcile/start/", views.reconcile_start, name="reconcile_start"),
    path("reconcile/findings/<int:pk>/<str:action>/", views.finding_resolve, name="finding_resolve"),
    path("directory-sync/", views.sync_status, name="sync"),
    path("directory-sync/start/", views.sync_start, name="sync_start"),
    path("intune-status/", views_status.status_sync, name="status_sync"),
    path("intune-status/start/", views_status.status_sync_start, name="status_sync_start"),
    path("profiles/<uuid:code>/send/", views_intune.profile_send, name="profile_send"),
    path("connectors/refresh/", views_intune.intune_connectors_refresh, name="intune_connectors_refresh"),
    path("profiles/send/", views_intune.profiles_send_outstanding, name="profiles_send_outstanding"),
]
