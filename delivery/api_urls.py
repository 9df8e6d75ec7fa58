from __future__ import annotations

from django.urls import path

from delivery import api

urlpatterns = [
    path("enroll", api.enroll, name="device_api_enroll"),
    path("check-in", api.check_in, name="device_api_check_in"),
    path("report", api.report, name="device_api_report"),
]
