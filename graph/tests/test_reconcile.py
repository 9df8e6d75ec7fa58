from __future__ import annotations

from collections.abc import Callable

import pytest

from certs.models import Certificate, GraphState
from devtools.emulator.server import Emulator
from graph import reconcile, records, uploads
from graph.client import GraphClient
from graph.models import ReconcileFinding, ReconcileRun, UploadRecord
from graph.tests.factories import graph_body
from portal.audit import Actor
from portal.lib.refusal import Refused
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db
Kind = ReconcileFinding.Kind


@pytest.fixture
def uploaded(
    emulator: Emulator, portal_graph: GraphClient, make_certificate: Callable[..., Certificate]
) -> list[Certificate]:
    upns = [u["userPrincipalName"] for u in list(emulator.state.users.values())[:10]]
    certificates = [make_certificate(upn) for upn in upns]
    for certificate in certificates:
        uploads.upload(uploads.queue_upload(certificate).pk, client=portal_graph)
    return certificates


def test_a_tenant_in_step_with_the_portal_reports_only_matches(
    uploaded: list[Certificate], portal_graph: GraphClient
) -> None:
    run = reconcile.run(client=portal_graph)
    assert run.state == ReconcileRun.State.DONE
    assert run.counts == {
        "intune": 10,
        "portal": 10,
        "matched": 10,
        "missing": 0,
        "only_in_intune": 0,
        "mismatch": 0,
        "adopted": 0,
        "not_uploaded": 0,
    }
    assert AuditEvent.objects.filter(activity="Reconcile Intune certificates").exists()


def test_it_sorts_every_difference_into_its_category(
    emulator: Emulator, uploaded: list[Certificate], portal_graph: GraphClient
) -> None:
    gone, changed = records.graph_id(uploaded[0]), records.graph_id(uploaded[1])
    assert portal_graph.delete_pfx(gone)  # deleted behind the portal's back
    portal_graph.update_pfx(changed, {"intendedPurpose": "smimeSigning"})
    stranger = list(emulator.state.users.values())[50]["userPrincipalName"]
    portal_graph.create_pfx(graph_body(stranger))  # uploaded by some other tool
    run = reconcile.run(client=portal_graph)
    assert (run.count("intune"), run.count("matched")) == (10, 8)
    assert (run.count(Kind.MISSING), run.count(Kind.MISMATCH), run.count(Kind.ONLY_IN_INTUNE)) == (1, 1, 1)
    missing = run.findings.get(kind=Kind.MISSING)
    assert missing.graph_id == gone and missing.certificate == uploaded[0]
    assert run.findings.get(kind=Kind.MISMATCH).differences == [
        {"field": "intendedPurpose", "portal": "smimeEncryption", "intune": "smimeSigning"}
    ]
    assert run.findings.get(kind=Kind.ONLY_IN_INTUNE).upn == stranger
    uploaded[0].refresh_from_db()
    assert uploaded[0].graph_state == GraphState.NOT_UPLOADED


def test_certificates_not_uploaded_yet_are_counted_but_not_reported_as_missing(
    emulator: Emulator,
    uploaded: list[Certificate],
    portal_graph: GraphClient,
    make_certificate: Callable[..., Certificate],
) -> None:
    waiting = make_certificate(list(emulator.state.users.values())[20]["userPrincipalName"])
    failed = make_certificate(list(emulator.state.users.values())[21]["userPrincipalName"])
    Certificate.objects.filter(pk=failed.pk).update(graph_state=GraphState.FAILED)
    portal_graph.delete_pfx(records.graph_id(uploaded[0]))
    first = reconcile.run(client=portal_graph)
    assert (first.count(Kind.MISSING), first.count("not_uploaded")) == (1, 2)
    assert first.findings.get().certificate == uploaded[0]
    second = reconcile.run(client=portal_graph)
    # The missing one is now known not to be in Intune: the first report already raised it.
    assert (second.count(Kind.MISSING), second.count("not_uploaded")) == (0, 3)
    assert second.findings.count() == 0
    waiting.refresh_from_db()
    assert waiting.graph_state == GraphState.NOT_UPLOADED


def test_each_action_is_carried_out_and_audited(
    emulator: Emulator, uploaded: list[Certificate], portal_graph: GraphClient
) -> None:
    portal_graph.delete_pfx(records.graph_id(uploaded[0]))
    users = list(emulator.state.users.values())
    for user in users[60:62]:
        portal_graph.create_pfx(graph_body(user["userPrincipalName"]))
    run = reconcile.run(client=portal_graph)
    actor = Actor.system("admin")
    reconcile.resolve(actor, run.findings.get(kind=Kind.MISSING), "reupload")
    uploads.upload(UploadRecord.objects.get(graph_id=records.graph_id(uploaded[0])).pk, client=portal_graph)
    adopt, delete = run.findings.filter(kind=Kind.ONLY_IN_INTUNE)
    reconcile.resolve(actor, adopt, "adopt")
    reconcile.resolve(actor, delete, "delete")
    assert (
        uploads.delete(UploadRecord.objects.get(graph_id=delete.graph_id).pk, client=portal_graph)
        == "deleted"
    )
    with pytest.raises(Refused) as refused:
        reconcile.resolve(actor, adopt, "delete")
    assert refused.value.code == "finding_not_resolvable"

    again = reconcile.run(client=portal_graph)
    assert again.count("matched") == 10
    assert again.count("adopted") == 1
    assert again.findings.count() == 0
    activities = set(AuditEvent.objects.values_list("activity", flat=True))
    assert {
        "Upload certificate to Intune again",
        "Adopt Intune certificate",
        "Delete certificate from Intune",
    } <= activities


def test_a_run_that_cannot_reach_graph_is_recorded_as_failed_with_the_error(
    emulator: Emulator, uploaded: list[Certificate], portal_graph: GraphClient
) -> None:
    emulator.state.tokens.clear()
    emulator.config.client_secret = "rotated"
    try:
        assert portal_graph.forget_token is not None
        portal_graph.forget_token()
        run = reconcile.run(client=portal_graph)
    finally:
        emulator.config.client_secret = "emulator-secret"
    assert run.state == ReconcileRun.State.FAILED
    assert "AADSTS7000215" in run.error["summary"]
