from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.test import Client
from django.urls import reverse

from certs.models import Certificate, GraphState
from devtools.emulator.server import Emulator
from graph import reconcile, records, secrets, uploads
from graph.client import GraphClient
from graph.models import ReconcileFinding, ReconcileRun, SyncRun, TenantConnection, UploadRecord
from portal.models import AuditEvent, User

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def no_mfa(settings):
    settings.PORTAL_ENFORCE_MFA = False


def _form(emulator: Emulator, **changes: str) -> dict[str, str]:
    return {
        "tenant_id": emulator.config.tenant_id,
        "client_id": emulator.config.client_id,
        "cloud": "global",
        "credential_kind": "secret",
        "secret": emulator.config.client_secret,
        "authority_url": emulator.url,
        "graph_url": emulator.url,
        "ca_certificate": emulator.ca_path.read_text(),
        "write_limit": "100",
        "write_window_seconds": "20",
        **changes,
    }


def test_an_admin_connects_and_the_secret_is_stored_encrypted_and_never_shown(
    client: Client, intune_admin: User, emulator: Emulator
) -> None:
    client.force_login(intune_admin)
    response = client.post(reverse("graph:connection_edit"), _form(emulator))
    assert response.status_code == 302
    connection = TenantConnection.objects.get()
    assert emulator.config.client_secret.encode() not in bytes(connection.credential_encrypted)
    assert secrets.unseal(connection.credential_encrypted) == {"secret": emulator.config.client_secret}
    for url in (reverse("graph:connection"), reverse("graph:connection_edit")):
        assert emulator.config.client_secret not in client.get(url).content.decode()
    assert (connection.write_limit, connection.write_window_seconds) == (100, 20.0)
    event = AuditEvent.objects.get(activity="Connect Microsoft Graph")
    assert emulator.config.client_secret not in str(event.resources)


def test_saving_without_a_secret_keeps_the_stored_one_and_changes_the_budget(
    client: Client, intune_admin: User, emulator: Emulator, connected: TenantConnection
) -> None:
    client.force_login(intune_admin)
    response = client.post(
        reverse("graph:connection_edit"),
        _form(emulator, secret="", write_limit="50", write_window_seconds="10"),
    )
    assert response.status_code == 302
    connection = TenantConnection.objects.get()
    assert (connection.write_limit, connection.write_window_seconds) == (50, 10.0)
    assert (
        secrets.unseal(TenantConnection.objects.get().credential_encrypted)["secret"]
        == emulator.config.client_secret
    )


def test_a_first_connection_without_a_credential_is_refused(
    client: Client, intune_admin: User, emulator: Emulator
) -> None:
    client.force_login(intune_admin)
    response = client.post(reverse("graph:connection_edit"), _form(emulator, secret=""))
    assert response.status_code == 400
    assert not TenantConnection.objects.exists()


def test_test_connection_signs_in_and_reads_a_page(
    client: Client, intune_admin: User, connected: TenantConnection
) -> None:
    client.force_login(intune_admin)
    response = client.post(reverse("graph:connection_test"), follow=True)
    assert "Signed in and read a page" in response.content.decode()
    connected.refresh_from_db()
    assert connected.test_ok is True and connected.test_result["users"] == 1


def test_a_failing_test_shows_graph_error_and_request_ids(
    client: Client, intune_admin: User, emulator: Emulator, connected: TenantConnection
) -> None:
    client.force_login(intune_admin)
    client.post(reverse("graph:connection_edit"), _form(emulator, secret="wrong"))
    response = client.post(reverse("graph:connection_test"), follow=True)
    page = response.content.decode()
    assert "AADSTS7000215" in page
    assert TenantConnection.objects.get().test_ok is False


def test_actions_that_need_a_connection_say_so_with_the_code_when_there_is_none(
    client: Client, intune_admin: User
) -> None:
    client.force_login(intune_admin)
    tested = client.post(reverse("graph:connection_test"), follow=True).content.decode()
    assert "No connection to test. (code not_connected)" in tested
    uploaded = client.post(reverse("graph:upload_outstanding"), follow=True).content.decode()
    assert "Connect the tenant first. (code not_connected)" in uploaded
    assert not AuditEvent.objects.exists()


def test_the_help_desk_reads_the_pages_but_cannot_change_anything(
    client: Client, helpdesk: User, connected: TenantConnection
) -> None:
    client.force_login(helpdesk)
    for name in ("connection", "reconcile", "sync"):
        assert client.get(reverse(f"graph:{name}")).status_code == 200
    for name in ("connection_edit", "connection_test", "reconcile_start", "sync_start", "upload_outstanding"):
        assert client.post(reverse(f"graph:{name}")).status_code == 403


def test_the_help_desk_is_offered_no_action_that_would_be_refused(
    client: Client, helpdesk: User, intune_admin: User, connected: TenantConnection
) -> None:
    run = ReconcileRun.objects.create(state=ReconcileRun.State.DONE, counts={"only_in_intune": 1})
    finding = ReconcileFinding.objects.create(
        run=run, kind=ReconcileFinding.Kind.ONLY_IN_INTUNE, graph_id="u-1", upn="kari@contoso.example"
    )
    actions = {
        "connection": [reverse("graph:connection_edit"), reverse("graph:connection_test")],
        "reconcile": [
            reverse("graph:reconcile_start"),
            reverse("graph:finding_resolve", args=[finding.pk, "adopt"]),
            reverse("graph:finding_resolve", args=[finding.pk, "delete"]),
        ],
        "sync": [reverse("graph:sync_start")],
    }
    for user, offered in ((intune_admin, True), (helpdesk, False)):
        client.force_login(user)
        for page, urls in actions.items():
            body = client.get(reverse(f"graph:{page}")).content.decode()
            for url in urls:
                assert (f'"{url}"' in body) is offered, (user.email, page, url)
    # The help desk still reads the finding, just without the buttons.
    assert "kari@contoso.example" in client.get(reverse("graph:reconcile")).content.decode()


def test_an_admin_without_a_role_is_refused(client: Client, make_admin: Callable[..., User]) -> None:
    client.force_login(make_admin(None))
    assert client.get(reverse("graph:connection")).status_code == 403


def test_actions_refuse_get(client: Client, intune_admin: User) -> None:
    client.force_login(intune_admin)
    for name in ("connection_test", "reconcile_start", "sync_start", "upload_outstanding"):
        assert client.get(reverse(f"graph:{name}")).status_code == 405


def test_the_reconcile_report_shows_counts_and_resolves_a_finding(
    client: Client,
    intune_admin: User,
    emulator: Emulator,
    portal_graph: GraphClient,
    make_certificate: Callable[..., Certificate],
) -> None:
    certificate = make_certificate()
    uploads.upload(uploads.queue_upload(certificate).pk, client=portal_graph)
    portal_graph.delete_pfx(records.graph_id(certificate))
    run = reconcile.run(client=portal_graph)
    client.force_login(intune_admin)
    page = client.get(reverse("graph:reconcile")).content.decode()
    assert "Missing in Intune" in page and records.graph_id(certificate) in page
    partial = client.get(reverse("graph:reconcile") + f"?run={run.code}&kind=missing", headers=HTMX)
    assert "<html" not in partial.content.decode()
    finding = run.findings.get()
    response = client.post(reverse("graph:finding_resolve", args=[finding.pk, "reupload"]))
    assert response.status_code == 302
    finding.refresh_from_db()
    assert finding.resolution == ReconcileFinding.Resolution.REUPLOADED
    assert UploadRecord.objects.get(certificate=certificate).state == UploadRecord.State.QUEUED
    assert (
        client.post(reverse("graph:finding_resolve", args=[finding.pk, "adopt"]), follow=True).status_code
        == 200
    )


def test_starting_reconcile_and_sync_records_a_run_and_an_audit_event(
    client: Client, intune_admin: User, connected: TenantConnection
) -> None:
    client.force_login(intune_admin)
    response = client.post(reverse("graph:reconcile_start"))
    assert response.status_code == 302 and "?run=" in response["Location"]
    assert client.post(reverse("graph:sync_start")).status_code == 302
    assert client.get(reverse("graph:sync")).status_code == 200
    activities = set(AuditEvent.objects.values_list("activity", flat=True))
    assert {"Start Intune reconcile", "Start directory sync"} <= activities


def test_a_second_click_while_a_run_is_running_starts_no_second_run(
    client: Client, intune_admin: User, connected: TenantConnection
) -> None:
    client.force_login(intune_admin)
    for name, model, says in (
        ("reconcile_start", ReconcileRun, "A reconcile is already running."),
        ("sync_start", SyncRun, "A directory sync is already running."),
    ):
        client.post(reverse(f"graph:{name}"))
        again = client.post(reverse(f"graph:{name}"), follow=True)
        assert says in again.content.decode()
        assert model.objects.count() == 1, name
    activities = list(AuditEvent.objects.values_list("activity", flat=True))
    assert activities.count("Start Intune reconcile") == activities.count("Start directory sync") == 1


def test_an_admin_connects_with_a_certificate_credential(
    client: Client, intune_admin: User, emulator: Emulator
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "PFX Portal")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ) + cert.public_bytes(serialization.Encoding.PEM)
    client.force_login(intune_admin)
    form = _form(emulator, credential_kind="certificate", secret="", certificate_pem=pem.decode())
    assert client.post(reverse("graph:connection_edit"), form).status_code == 302
    connection = TenantConnection.objects.get()
    assert b"PRIVATE KEY" not in bytes(connection.credential_encrypted)
    assert len(connection.certificate_thumbprint) == 40
    client.post(reverse("graph:connection_test"))
    assert TenantConnection.objects.get().test_ok is True


def test_a_pem_without_its_private_key_is_refused(
    client: Client, intune_admin: User, emulator: Emulator
) -> None:
    client.force_login(intune_admin)
    form = _form(
        emulator, credential_kind="certificate", secret="", certificate_pem=emulator.ca_path.read_text()
    )
    response = client.post(reverse("graph:connection_edit"), form)
    assert response.status_code == 400
    assert "Cannot use this PEM" in response.content.decode()


def test_certificates_stored_before_the_tenant_was_connected_are_uploaded_on_request(
    client: Client,
    intune_admin: User,
    connected: TenantConnection,
    make_certificate: Callable[..., Certificate],
) -> None:
    waiting = [make_certificate(), make_certificate()]
    Certificate.objects.filter(pk=waiting[1].pk).update(graph_state=GraphState.FAILED)
    client.force_login(intune_admin)
    page = client.get(reverse("graph:connection")).content.decode()
    assert "Upload 2 certificates not in Intune" in page
    response = client.post(reverse("graph:upload_outstanding"), follow=True)
    assert "2 certificate(s) queued for upload to Intune." in response.content.decode()
    assert set(Certificate.objects.values_list("graph_state", flat=True)) == {GraphState.PENDING}
    assert UploadRecord.objects.filter(state=UploadRecord.State.QUEUED).count() == 2
    assert AuditEvent.objects.get(activity="Upload certificates to Intune").actor_name == intune_admin.email
    assert "not in Intune" not in client.get(reverse("graph:connection")).content.decode()


def test_the_help_desk_is_told_what_is_not_in_intune_but_gets_no_upload_button(
    client: Client, helpdesk: User, connected: TenantConnection, make_certificate: Callable[..., Certificate]
) -> None:
    make_certificate()
    client.force_login(helpdesk)
    page = client.get(reverse("graph:connection")).content.decode()
    assert 'data-testid="outstanding"' in page and 'data-testid="upload-outstanding"' not in page


def test_uploading_what_is_not_in_intune_says_which_certificates_wait_for_their_users(
    client: Client,
    intune_admin: User,
    connected: TenantConnection,
    emulator: Emulator,
    make_certificate: Callable[..., Certificate],
) -> None:
    from directory.models import DirectoryUser, UserSource
    from graph.tests.conftest import emulator_upns

    first, second = emulator_upns(emulator, 2)
    make_certificate(first)
    imported = make_certificate(second)
    DirectoryUser.objects.filter(pk=imported.user_id).update(source=UserSource.CSV)
    client.force_login(intune_admin)
    page = client.get(reverse("graph:connection")).content.decode()
    assert 'data-testid="held"' in page and "1 of them belongs to users Intune does not know" in page
    response = client.post(reverse("graph:upload_outstanding"), follow=True).content.decode()
    assert "1 certificate(s) queued for upload to Intune." in response
    assert "1 not uploaded: Intune does not know their users" in response
    assert UploadRecord.objects.count() == 1
