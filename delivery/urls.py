from __future__ import annotations

from django.urls import path

from delivery import views

app_name = "delivery"
urlpatterns = [
    path("devices/monitor/certificates/", views.certificates, name="certificates"),
    path("devices/monitor/certificates.csv", views.certificates_csv, name="certificates_csv"),
    path("devices/<uuid:device_id>/resend/", views.resend, name="resend"),
    path("profiles/<uuid:code>/retry-failed/", views.retry_failed, name="retry_failed"),
]
