"""One alert goes out by e-mail and to the webhook, and the line it returns says what happened."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from django.core import mail

from portal.lib import alerts


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()
    server.server_close()


def test_an_alert_is_mailed_to_the_configured_addresses_and_posted_to_the_webhook(
    settings: Any, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook
    settings.CONNECTOR_ALERT_EMAILS = ["pki-team@contoso.example"]
    settings.CONNECTOR_ALERT_WEBHOOK = url

    result = alerts.deliver(
        "Connector A is error", "It stopped.", {"name": "A"}, permission="connectors.update"
    )

    assert result == "mailed 1; webhook 204"
    assert mail.outbox[0].to == ["pki-team@contoso.example"]
    assert mail.outbox[0].subject.endswith("Connector A is error")
    assert received == [{"name": "A"}]


def test_an_unreachable_webhook_is_reported_in_the_result_not_raised(settings: Any) -> None:
    settings.CONNECTOR_ALERT_EMAILS = ["pki-team@contoso.example"]
    settings.CONNECTOR_ALERT_WEBHOOK = "http://127.0.0.1:9/unreachable"

    result = alerts.deliver("Subject", "Body", {}, permission="connectors.update")

    assert result.startswith("mailed 1; webhook failed:")


@pytest.mark.django_db
def test_with_no_addresses_configured_and_nobody_holding_the_permission_no_one_is_mailed(
    settings: Any,
) -> None:
    settings.CONNECTOR_ALERT_EMAILS = []
    settings.CONNECTOR_ALERT_WEBHOOK = ""

    assert alerts.deliver("Subject", "Body", {}, permission="connectors.update") == "no recipients"
