from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from api.models import ApiToken
from portal.models import AuditEvent, User

pytestmark = pytest.mark.django_db


def test_a_new_token_is_shown_once_and_then_listed_by_name_only(helpdesk: User, client: Client) -> None:
    client.force_login(helpdesk)
    created = client.post("/account/api-tokens/new", {"name": "ticketing sync", "days": "30"})
    assert created.status_code == 200
    assert created["Cache-Control"].startswith("max-age=0")
    secret = created.context["secret"]
    assert secret.startswith("pfxp_") and secret in created.content.decode()
    listing = client.get("/account/api-tokens/").content.decode()
    assert "ticketing sync" in listing and secret not in listing
    token = ApiToken.objects.get(user=helpdesk)
    assert AuditEvent.objects.filter(activity="Create API token", actor=helpdesk).exists()
    answer = Client().get("/api/v1/certificates", headers={"Authorization": f"Bearer {secret}"})
    assert answer.status_code == 200
    assert token.prefix in listing


def test_a_token_revoked_on_the_page_is_refused_by_the_api(helpdesk: User, client: Client) -> None:
    client.force_login(helpdesk)
    secret = client.post("/account/api-tokens/new", {"name": "ci", "days": "7"}).context["secret"]
    token = ApiToken.objects.get(user=helpdesk)
    assert client.post(f"/account/api-tokens/{token.code}/revoke").status_code == 302
    answer = Client().get("/api/v1/certificates", headers={"Authorization": f"Bearer {secret}"})
    assert answer.status_code == 401


def test_an_admin_cannot_revoke_someone_elses_token(
    helpdesk: User, make_admin: Callable[..., User], client: Client
) -> None:
    client.force_login(helpdesk)
    client.post("/account/api-tokens/new", {"name": "ci", "days": "7"})
    token = ApiToken.objects.get(user=helpdesk)
    client.force_login(make_admin("read_only_operator"))
    assert client.post(f"/account/api-tokens/{token.code}/revoke").status_code == 404
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None


def test_a_token_longer_than_allowed_is_refused_on_the_form(
    helpdesk: User, client: Client, settings: object
) -> None:
    settings.API_TOKEN_MAX_DAYS = 30  # type: ignore[attr-defined]
    client.force_login(helpdesk)
    response = client.post("/account/api-tokens/new", {"name": "ci", "days": "31"})
    assert response.status_code == 400
    assert not ApiToken.objects.exists()


def test_the_openapi_description_and_its_documentation_page_are_served_from_the_portal(
    client: Client,
) -> None:
    description = client.get("/api/v1/openapi.json")
    assert description.status_code == 200
    assert description.json()["openapi"].startswith("3.")
    assert "/api/v1/certificates" in description.json()["paths"]
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    assert "/static/ninja/swagger-ui-bundle.js" in page.content.decode()


def test_the_api_token_command_prints_a_working_secret(helpdesk: User) -> None:
    import io

    from django.core.management import CommandError, call_command

    out = io.StringIO()
    call_command(
        "api_token", "--email", helpdesk.email.upper(), "--name", "bootstrap", "--days", "2", stdout=out
    )
    secret = out.getvalue().strip()
    assert (
        Client().get("/api/v1/certificates", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    )
    with pytest.raises(CommandError, match="unknown_admin"):
        call_command("api_token", "--email", "nobody@contoso.example")
    with pytest.raises(CommandError, match="bad_expiry"):
        call_command("api_token", "--email", helpdesk.email, "--days", "0")


def test_an_unknown_api_path_is_a_problem_detail_not_a_page(client: Client) -> None:
    response = client.get("/api/v1/certificate-list")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"
