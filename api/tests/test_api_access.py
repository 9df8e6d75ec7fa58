from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from api import dropfolder, tokens
from api.models import ApiToken
from api.tests.conftest import ApiClient
from certs.models import EncryptionKey, ImportBatch
from certs.tests.importing import add_key, stored_certificate
from portal.audit import Actor
from portal.lib.tokens import hash_secret
from portal.models import AuditEvent, ScopeTag, User
from profiles import services as profile_services
from profiles.models import Profile

pytestmark = pytest.mark.django_db

WRITE_METHODS = ("post", "put", "patch", "delete")


def _profile(name: str, tag: ScopeTag) -> Profile:
    draft = profile_services.ProfileDraft(
        platform="iOS", name=name, intended_purpose="smimeEncryption", scope_tags=(tag,)
    )
    return profile_services.profile_create(actor=Actor.system(), draft=draft)


def _write_operations() -> list[tuple[str, str]]:
    schema = Client().get("/api/v1/openapi.json").json()
    return [
        (method, path.removeprefix("/api/v1"))
        for path, operations in schema["paths"].items()
        for method in operations
        if method in WRITE_METHODS
    ]


def test_a_token_acts_with_its_admins_roles(intune_admin: User, api_as: Callable[..., ApiClient]) -> None:
    add_key()
    response = api_as(intune_admin).get("/encryption-keys")
    assert response.status_code == 200
    assert [k["key_name"] for k in response.json()] == ["PFXEncryptionKey"]


def test_a_read_only_operators_token_is_refused_every_write(
    make_admin: Callable[..., User], api_as: Callable[..., ApiClient]
) -> None:
    certificate = stored_certificate()
    key = certificate.encryption_key
    profile = _profile("Mail", ScopeTag.default())
    batch = certificate.batch
    assert batch is not None
    folder = dropfolder.folder_create(
        Actor.system(),
        owner=make_admin("intune_administrator"),
        name="Nightly",
        directory="nightly",
        key=key,
        on_duplicate="skip",
    )
    codes = {
        "drop-folders": folder.code,
        "certificates": certificate.code,
        "imports": batch.code,
        "encryption-keys": key.code,
        "profiles": profile.code,
    }
    client = api_as(make_admin("read_only_operator"))
    operations = _write_operations()
    assert len(operations) >= 10
    for method, path in operations:
        resource = path.split("/")[1]
        response = client.send(method.upper(), path.replace("{code}", str(codes[resource])), json={})
        assert response.status_code == 403, (method, path, response.content)
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == "forbidden"
    assert client.get("/certificates").status_code == 200
    assert EncryptionKey.objects.filter(pk=key.pk, is_default=True).exists()
    assert Profile.objects.filter(pk=profile.pk).exists()
    assert not AuditEvent.objects.filter(actor_name__contains="API token").exists()


def test_a_token_scoped_to_one_tag_sees_nothing_outside_it(
    make_admin: Callable[..., User], make_tag: Callable[[str], ScopeTag], api_as: Callable[..., ApiClient]
) -> None:
    paris, berlin = make_tag("Paris"), make_tag("Berlin")
    seen = _profile("Paris mail", paris)
    hidden = _profile("Berlin mail", berlin)
    key = add_key()
    key.scope_tags.set([berlin])
    client = api_as(make_admin("intune_administrator", tags=[paris]))
    assert [p["name"] for p in client.get("/profiles").json()] == ["Paris mail"]
    assert client.get(f"/profiles/{seen.code}").status_code == 200
    for path in (
        f"/profiles/{hidden.code}",
        f"/profiles/{hidden.code}/status",
        f"/encryption-keys/{key.code}",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"
    assert client.get("/encryption-keys").json() == []
    assert client.delete(f"/profiles/{hidden.code}").status_code == 404
    assert Profile.objects.filter(pk=hidden.pk).exists()


def test_a_revoked_token_is_refused_at_once(intune_admin: User, api_as: Callable[..., ApiClient]) -> None:
    client = api_as(intune_admin)
    assert client.get("/encryption-keys").status_code == 200
    token = ApiToken.objects.get(user=intune_admin)
    tokens.token_revoke(Actor.for_user(intune_admin), token=token)
    response = client.get("/encryption-keys")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    assert response["WWW-Authenticate"] == "Bearer"


def test_an_expired_token_is_refused(intune_admin: User, api_as: Callable[..., ApiClient]) -> None:
    client = api_as(intune_admin)
    ApiToken.objects.filter(user=intune_admin).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get("/encryption-keys").status_code == 401


def test_a_disabled_admins_token_is_refused(intune_admin: User, api_as: Callable[..., ApiClient]) -> None:
    client = api_as(intune_admin)
    User.objects.filter(pk=intune_admin.pk).update(is_active=False)
    assert client.get("/encryption-keys").status_code == 401


def test_a_call_without_a_token_or_with_a_made_up_one_is_refused(intune_admin: User) -> None:
    assert ApiClient("").get("/certificates").json()["code"] == "not_authenticated"
    assert ApiClient("pfxp_madeup").get("/certificates").json()["code"] == "invalid_token"
    assert ApiClient("a.b.c").get("/certificates").status_code == 401


def test_the_secret_is_stored_only_as_a_hash(intune_admin: User) -> None:
    token, secret = tokens.token_create(Actor.for_user(intune_admin), user=intune_admin, name="ci", days=7)
    stored = ApiToken.objects.filter(pk=token.pk).values().get()
    assert secret not in str(stored)
    assert stored["secret_hash"] == hash_secret(secret)


def test_a_token_cannot_outlive_the_longest_expiry(intune_admin: User, settings: object) -> None:
    from portal.lib.refusal import Refused

    with pytest.raises(Refused) as refused:
        tokens.token_create(Actor.for_user(intune_admin), user=intune_admin, name="ci", days=100_000)
    assert refused.value.code == "bad_expiry"


def test_too_many_calls_are_answered_429_with_retry_after(
    intune_admin: User, api_as: Callable[..., ApiClient], settings: object
) -> None:
    settings.API_RATE_LIMIT = 3  # type: ignore[attr-defined]
    settings.API_RATE_WINDOW_SECONDS = 3600  # type: ignore[attr-defined]
    client, other = api_as(intune_admin), api_as(intune_admin, name="other")
    statuses = [client.get("/encryption-keys").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = client.get("/encryption-keys")
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 3600
    assert other.get("/encryption-keys").status_code == 200


def test_changes_are_audited_with_the_token_named(
    intune_admin: User, api_as: Callable[..., ApiClient]
) -> None:
    key = add_key()
    client = api_as(intune_admin, name="nightly")
    assert client.post(f"/encryption-keys/{key.code}/default").status_code == 200
    event = AuditEvent.objects.get(activity="Set default encryption key", actor=intune_admin)
    assert event.actor_name == f"{intune_admin.email} (API token nightly)"
    assert ImportBatch.objects.count() == 0
