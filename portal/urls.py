from __future__ import annotations

from django.urls import include, path

from portal.views import account, audit, home, roles, tenant

urlpatterns = [
    # First: devices and connectors call these many times a second, and resolving walks the list.
    path("device-api/", include("delivery.api_urls")),
    path("connector-api/", include("connectors.api_urls")),
    path("", home.home, name="home"),
    path("healthz", home.healthz, name="healthz"),
    path("account/", account.account_settings, name="account_settings"),
    path("accounts/", include("allauth.urls")),
    path("account/api-tokens/", include("api.urls")),
    path("api/v1/", include("api.urls_v1")),
    path("tenant-admin/", tenant.tenant_admin, name="tenant_admin"),
    path("tenant-admin/audit-logs/", audit.audit_logs, name="audit_logs"),
    path("tenant-admin/audit-logs/export.csv", audit.audit_export, name="audit_export"),
    path("tenant-admin/audit-logs/<uuid:code>/", audit.audit_detail, name="audit_detail"),
    path("tenant-admin/roles/", include(roles.urlpatterns)),
    path("", include("delivery.urls")),
    path("", include("directory.urls")),
    path("certificates/drop-folders/", include("api.drop_urls")),
    path("certificates/", include("certs.urls")),
    path("profiles/", include("profiles.urls")),
    path("connectors/", include("connectors.urls")),
    path("tenant-admin/intune/", include("graph.urls")),
]
