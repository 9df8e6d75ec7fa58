from __future__ import annotations

import datetime as dt
import hashlib
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from devtools.emulator.server import Emulator
from graph.client import CLOUDS, GraphClient, GraphError, SignInError, TokenSource, odata_string
from graph.tests.conftest import emulator_session
from graph.tests.factories import graph_body, make_pfx


def _upn(emulator: Emulator, needle: str) -> str:
    return str(
        next(
            u["userPrincipalName"] for u in emulator.state.users.values() if needle in u["userPrincipalName"]
        )
    )


def _user_id(emulator: Emulator, upn: str) -> str:
    return str(next(u["id"] for u in emulator.state.users.values() if u["userPrincipalName"] == upn))


def test_it_follows_next_links_through_every_page_of_users(emulator: Emulator, graph: GraphClient) -> None:
    pages = list(graph.pages("/v1.0/users"))
    ids = [user["id"] for page in pages for user in page]
    assert len(pages) > 40
    assert len(ids) == len(set(ids)) == len(emulator.state.users)


def test_it_doubles_quotes_in_an_upn_filter(emulator: Emulator, graph: GraphClient) -> None:
    upn = _upn(emulator, "o'neil")
    assert odata_string(upn) == "'" + upn.replace("'", "''") + "'"
    assert graph.find_user(upn)["id"] == _user_id(emulator, upn)  # type: ignore[index]


def test_it_finds_a_guest_whose_upn_has_ext(emulator: Emulator, graph: GraphClient) -> None:
    upn = _upn(emulator, "#EXT#")
    found = graph.find_user(upn)
    assert found is not None
    assert found["userPrincipalName"] == upn


def test_it_url_encodes_plus_and_ampersand_in_an_upn(emulator: Emulator, graph: GraphClient) -> None:
    user_id = str(uuid.uuid4())
    upn = "r&d+o'hara_partner.com#EXT#@contoso.onmicrosoft.com"
    emulator.state.users[user_id] = {"id": user_id, "userPrincipalName": upn, "displayName": "R&D"}
    assert graph.find_user(upn)["id"] == user_id  # type: ignore[index]
    assert graph.find_user("nobody@contoso.com") is None


def test_the_emulator_refuses_an_upn_pasted_into_a_filter_unescaped(
    emulator: Emulator, graph: GraphClient
) -> None:
    upn = _upn(emulator, "o'neil")
    with pytest.raises(GraphError) as caught:
        graph.get_json(f"/v1.0/users?$filter=userPrincipalName eq '{upn}'")
    assert caught.value.status == 400
    assert caught.value.request_id and caught.value.client_request_id


def test_a_created_record_reads_back_with_secrets_redacted(emulator: Emulator, graph: GraphClient) -> None:
    upn = _upn(emulator, "o'neil")
    body = graph_body(upn)
    created = graph.create_pfx(body)
    record_id = GraphClient.pfx_id(_user_id(emulator, upn), body["thumbprint"])
    assert created is not None and created["id"] == record_id
    back = graph.get_pfx(record_id)
    assert back is not None
    assert back["encryptedPfxBlob"] == "AA=="
    assert back["encryptedPfxPassword"] == ""
    assert back["thumbprint"] == body["thumbprint"]
    assert back["intendedPurpose"] == "smimeEncryption"


def test_posting_the_same_record_twice_answers_conflict_and_keeps_one(
    emulator: Emulator, graph: GraphClient
) -> None:
    upn = _upn(emulator, "#EXT#")
    body = graph_body(upn)
    assert graph.create_pfx(body) is not None
    assert graph.create_pfx(body) is None
    assert len(list(graph.list_pfx())) == 1


def test_listing_certificates_pages_past_the_first_page(emulator: Emulator, graph: GraphClient) -> None:
    upns = [u["userPrincipalName"] for u in list(emulator.state.users.values())[:20]]
    for upn in upns:
        graph.create_pfx(graph_body(upn))
    assert len({r["id"] for r in graph.list_pfx()}) == 20


def test_delete_is_verified_by_reading_back(emulator: Emulator, graph: GraphClient) -> None:
    upn = _upn(emulator, "o'brien")
    body = graph_body(upn)
    graph.create_pfx(body)
    record_id = GraphClient.pfx_id(_user_id(emulator, upn), body["thumbprint"])
    assert graph.delete_pfx(record_id) is True
    assert graph.get_pfx(record_id) is None
    assert graph.delete_pfx(record_id) is True  # already gone counts as gone


def test_a_throttled_write_waits_for_retry_after_and_succeeds(emulator: Emulator, graph: GraphClient) -> None:
    emulator.config.write_limit, emulator.config.write_window = 2, 1.0
    upns = [u["userPrincipalName"] for u in list(emulator.state.users.values())[:5]]
    for upn in upns:
        assert graph.create_pfx(graph_body(upn)) is not None
    assert emulator.state.stats.throttled >= 1
    assert emulator.state.stats.creates == 5


@pytest.mark.parametrize("mode", ["none", "ms"])
def test_a_throttled_write_without_retry_after_backs_off_and_succeeds(
    emulator: Emulator, graph: GraphClient, mode: str
) -> None:
    emulator.config.write_limit, emulator.config.write_window, emulator.config.retry_after = 2, 0.5, mode
    waits: list[float] = []
    graph.on_throttle = waits.append
    for upn in [u["userPrincipalName"] for u in list(emulator.state.users.values())[:5]]:
        graph.create_pfx(graph_body(upn))
    assert emulator.state.stats.creates == 5
    assert waits


def test_throttling_that_never_ends_gives_up_with_the_graph_error(
    emulator: Emulator, graph: GraphClient
) -> None:
    emulator.config.write_limit, emulator.config.write_window, emulator.config.retry_after = 1, 60.0, "none"
    graph.max_attempts = 3
    users = list(emulator.state.users.values())
    graph.create_pfx(graph_body(users[0]["userPrincipalName"]))
    with pytest.raises(GraphError) as caught:
        graph.create_pfx(graph_body(users[1]["userPrincipalName"]))
    assert caught.value.status == 429 and caught.value.retryable
    assert "TooManyRequests" in caught.value.body


def test_a_body_for_an_unknown_user_is_refused_with_graph_ids(graph: GraphClient) -> None:
    with pytest.raises(GraphError) as caught:
        graph.create_pfx(graph_body("nobody@contoso.com"))
    error = caught.value
    assert error.status == 400 and error.code == "BadRequest"
    assert error.request_id and error.client_request_id
    assert "nobody@contoso.com" in error.body
    assert not error.retryable


def test_a_thumbprint_that_does_not_match_the_blob_is_refused(emulator: Emulator, graph: GraphClient) -> None:
    body = graph_body(_upn(emulator, "o'neil"))
    body["thumbprint"] = make_pfx()[1]
    with pytest.raises(GraphError, match="does not match"):
        graph.create_pfx(body)


def test_an_unknown_enum_value_is_refused(emulator: Emulator, graph: GraphClient) -> None:
    with pytest.raises(GraphError, match="userPfxIntendedPurpose"):
        graph.create_pfx(graph_body(_upn(emulator, "o'neil"), purpose="email"))


def test_a_wrong_client_secret_fails_sign_in_with_the_reason(emulator: Emulator) -> None:
    tokens = TokenSource(
        tenant_id=emulator.config.tenant_id,
        client_id=emulator.config.client_id,
        credential="wrong",
        cloud=CLOUDS["global"],
        authority_host=emulator.url,
        session=emulator_session(emulator.ca_path),
    )
    with pytest.raises(SignInError, match="AADSTS7000215"):
        tokens.token()


def test_a_certificate_credential_signs_in(emulator: Emulator) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "portal")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    thumbprint = hashlib.sha1(
        cert.public_bytes(serialization.Encoding.DER), usedforsecurity=False
    ).hexdigest()
    tokens = TokenSource(
        tenant_id=emulator.config.tenant_id,
        client_id=emulator.config.client_id,
        credential={"private_key": pem, "thumbprint": thumbprint},
        cloud=CLOUDS["global"],
        authority_host=emulator.url,
        session=emulator_session(emulator.ca_path),
    )
    assert tokens.token()
