from __future__ import annotations

import pytest
from django.test import Client


@pytest.mark.django_db
def test_the_health_check_answers_without_sign_in(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200


@pytest.mark.django_db
def test_the_home_page_asks_an_anonymous_visitor_to_sign_in(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
