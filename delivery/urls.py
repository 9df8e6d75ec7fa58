from __future__ import annotations

from django.urls import path

from delivery import enrolment_views, views

app_name = "delivery"
urlpatterns = [
    path("devices/monitor/certificates/", views.certificates, name="certificates"),
    path("devices/monitor/certificates.csv", views.certificates_csv, name="certificates_csv"),
    path("devices/enrolment/", enrolment_views.enrolment, name="enrolment"),
    path("devices/enrolment/secrets/new/", enrolment_views.secret_create, name="secret_create"),
    path(
        "devices/enrolment/secrets/<uuid:code>/revoke/", enrolment_views.secret_revoke, name="secret_revoke"
    ),
    path("devices/enrolment/tokens/new/", enrolment_views.token_issue, name="token_issue"),
    path("devices/enrolment/tokens/<uuid:code>/cancel/", enrolment_views.token_cancel, name="token_cancel"),
    path(
        "devices/enrolment/credentials/<uuid:code>/revoke/",
        enrolment_views.credential_revoke,
        name="credential_revoke",
    ),
    path("devices/<uuid:device_id>/resend/", views.resend, name="resend"),
    path("profiles/<uuid:code>/retry-failed/", views.retry_failed, name="retry_failed"),
]
