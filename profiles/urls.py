from __future__ import annotations

from django.urls import path

from profiles import report_views, views

app_name = "profiles"
urlpatterns = [
    path("", views.profile_list, name="list"),
    path("create/", views.profile_create, name="create"),
    path("create/<uuid:wizard>/<slug:step>/", views.profile_wizard, name="wizard"),
    path("users/<uuid:object_id>/", report_views.user_profiles, name="user_profiles"),
    path("<uuid:code>/", views.profile_detail, name="detail"),
    path("<uuid:code>/properties/", views.profile_properties, name="properties"),
    path("<uuid:code>/properties/<slug:section>/", views.profile_edit, name="edit"),
    path("<uuid:code>/status/", report_views.profile_report, name="report"),
    path("<uuid:code>/status.csv", report_views.profile_report_csv, name="report_csv"),
    path("<uuid:code>/user-status/", report_views.user_report, name="user_report"),
    path("<uuid:code>/user-status.csv", report_views.user_report_csv, name="user_report_csv"),
    path("<uuid:code>/delete/", views.profile_delete, name="delete"),
    path("<uuid:code>/duplicate/", views.profile_duplicate, name="duplicate"),
]
