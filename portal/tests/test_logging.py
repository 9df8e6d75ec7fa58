"""What the portal's logging prints: each line once, and no traceback for a request it refuses."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def console(settings) -> Iterator[io.StringIO]:
    """Everything the configured stream handlers would print (with DEBUG on, as in the demo)."""
    settings.DEBUG = True
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    handlers = {
        handler
        for logger in loggers
        if isinstance(logger, logging.Logger)
        for handler in logger.handlers
        if isinstance(handler, logging.StreamHandler) and not type(handler).__module__.startswith("_pytest")
    }
    buffer = io.StringIO()
    streams = {handler: handler.setStream(buffer) for handler in handlers}
    yield buffer
    for handler, stream in streams.items():
        handler.setStream(stream)


def test_a_refused_request_is_logged_once_in_one_line(console, helpdesk):
    client = Client()
    client.force_login(helpdesk)
    assert client.get("/connectors/add/").status_code == 403
    printed = console.getvalue()
    assert printed.count("Forbidden (Permission denied): /connectors/add/") == 1, printed
    assert "Traceback" not in printed


def test_a_server_error_keeps_its_traceback(console):
    from django.http import HttpResponseServerError
    from django.test import RequestFactory
    from django.utils.log import log_response

    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        log_response(
            "Internal Server Error: %s",
            "/x",
            response=HttpResponseServerError(),
            request=RequestFactory().get("/x"),
            exception=exc,
        )
    printed = console.getvalue()
    assert printed.count("Internal Server Error: /x") == 1 and "RuntimeError: boom" in printed
