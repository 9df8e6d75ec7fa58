from __future__ import annotations

from django.urls import path

from api import drop_views as views

app_name = "drop_folders"

urlpatterns = [
    path("", views.folder_list, name="list"),
    path("new/", views.folder_new, name="new"),
    path("<uuid:code>/", views.folder_detail, name="detail"),
    path("<uuid:code>/edit/", views.folder_edit, name="edit"),
    path("<uuid:code>/enable/", views.folder_state, {"enabled": True}, name="enable"),
    path("<uuid:code>/disable/", views.folder_state, {"enabled": False}, name="disable"),
    path("<uuid:code>/delete/", views.folder_delete, name="delete"),
    path("<uuid:code>/scan/", views.folder_scan, name="scan"),
    path("<uuid:code>/sets/<int:set_id>/results.csv", views.set_results, name="results"),
]
