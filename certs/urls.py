from __future__ import annotations

from django.urls import URLPattern, path

from certs.views import certificates, imports, keys

app_name = "certs"
urlpatterns: list[URLPattern] = [
    path("", certificates.certificate_list, name="list"),
    path("<uuid:code>/", certificates.certificate_detail, name="detail"),
    path("<uuid:code>/delete/", certificates.certificate_delete, name="delete"),
    path("users/<uuid:object_id>/remove-expired/", certificates.remove_expired, name="remove_expired"),
    path("cleanup/", certificates.cleanup, name="cleanup"),
    path("import/", imports.import_single, name="import"),
    path("import/check/", imports.import_check, name="import_check"),
    path("import/users/", imports.user_options, name="user_options"),
    path("import/bulk/", imports.import_bulk, name="bulk_import"),
    path("import/bulk/manifest-template.csv", imports.manifest_template, name="manifest_template"),
    path("imports/", imports.batches, name="batches"),
    path("imports/<uuid:code>/", imports.batch, name="batch"),
    path("imports/<uuid:code>/cancel/", imports.batch_cancel, name="batch_cancel"),
    path("imports/<uuid:code>/retry/", imports.batch_retry, name="batch_retry"),
    path("imports/<uuid:code>/import/", imports.batch_promote, name="batch_promote"),
    path("keys/", keys.keys, name="keys"),
    path("keys/add/", keys.key_add, name="key_add"),
    path("keys/<uuid:code>/default/", keys.key_default, name="key_default"),
    path("keys/<uuid:code>/retire/", keys.key_retire, name="key_retire"),
]
