from __future__ import annotations

from django.urls import path

from connectors import api

urlpatterns = [
    path("enroll", api.enroll, name="connector_api_enroll"),
    path("heartbeat", api.heartbeat, name="connector_api_heartbeat"),
    path("keys", api.publish_key, name="connector_api_keys"),
    path("jobs/claim", api.claim_jobs, name="connector_api_claim"),
    path("jobs/results", api.post_results, name="connector_api_results"),
]
