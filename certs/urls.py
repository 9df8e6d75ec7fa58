from __future__ import annotations

from django.urls import URLPattern, path

from certs import views

app_name = "certs"
urlpatterns: list[URLPattern] = [
    path("", views.certificate_list, name="list"),
    path("<uuid:code>/", views.certificate_detail, name="detail"),
    path("<uuid:code>/delete/", views.certificate_delete, name="delete"),
    path("users/<uuid:object_id>/remove-expired/", views.remove_expired, name="remove_expired"),
    path("cleanup/", views.cleanup, name="cleanup"),
    path("import/", views.import_single, name="import"),
    path("import/check/", views.import_check, name="import_check"),
    path("import/users/", views.user_options, name="user_options"),
    path("import/bulk/", views.import_bulk, name="bulk_import"),
    path("import/bulk/manifest-template.csv", views.manifest_template, name="manifest_template"),
    path("imports/", views.batches, name="batches"),
    path("imports/<uuid:code>/", views.batch, name="batch"),
    path("imports/<uuid:code>/cancel/", views.batch_cancel, name="batch_cancel"),
    path("imports/<uuid:code>/retry/", views.batch_retry, name="batch_retry"),
    path("imports/<uuid:code>/import/", views.batch_promote, name="batch_promote"),
    path("keys/", views.keys, name="keys"),
    path("keys/add/", views.key_add, name="key_add"),
    path("keys/<uuid:code>/default/", views.key_default, name="key_default"),
]
