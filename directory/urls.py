from __future__ import annotations

from django.urls import path

from directory import views

app_name = "directory"
urlpatterns = [
    path("users/", views.users, name="users"),
    path("users/import/", views.import_csv, name="import"),
    path("users/<uuid:object_id>/", views.user_detail, name="user"),
    path("groups/", views.groups, name="groups"),
    path("groups/<uuid:object_id>/", views.group_detail, name="group"),
    path("devices/", views.devices, name="devices"),
    path("devices/<uuid:device_id>/", views.device_detail, name="device"),
    path("troubleshooting/", views.troubleshoot, name="troubleshoot"),
]
