"""The client asks Graph only for what Microsoft's schema has, and the emulator refuses the rest as Graph does."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from certs.models import Certificate, GraphState
from devtools.emulator import schema
from devtools.emulator.server import Emulator
from graph import records, uploads
from graph.client import GraphClient, GraphError
from graph.endpoints import SELECTS


@pytest.mark.parametrize(("version", "type_name", "fields"), SELECTS)
def test_every_selected_property_exists_in_the_schema_of_the_version_it_is_sent_to(
    version: str, type_name: str, fields: str
) -> None:
    known = schema.properties(version, type_name)
    assert [f for f in fields.split(",") if f not in known] == []


def test_a_v1_request_for_the_beta_only_device_type_is_refused_as_graph_refuses_it(
    graph: GraphClient,
) -> None:
    with pytest.raises(GraphError) as caught:
        graph.get_json("/v1.0/deviceManagement/managedDevices?$select=id,deviceType")
    assert caught.value.status == 400
    assert caught.value.code == "BadRequest"
    assert (
        "Could not find a property named 'deviceType' on type 'microsoft.graph.managedDevice'"
        in caught.value.message
    )
    assert caught.value.request_id


def test_beta_answers_device_type_and_v1_never_shows_it(graph: GraphClient) -> None:
    beta = graph.get_json("/beta/deviceManagement/managedDevices?$select=id,deviceType")["value"]
    assert beta and all(set(d) == {"id", "deviceType"} for d in beta)
    v1 = graph.get_json("/v1.0/deviceManagement/managedDevices")["value"]
    assert all("deviceType" not in d for d in v1)


def test_an_unknown_body_property_is_refused(
    graph: GraphClient, make_certificate: Callable[..., Certificate]
) -> None:
    body = records.certificate_body(make_certificate()) | {"certificateColour": "blue"}
    with pytest.raises(GraphError, match="The property 'certificateColour' does not exist on type"):
        graph.create_pfx(body)


def test_a_wrong_odata_type_is_refused(
    graph: GraphClient, make_certificate: Callable[..., Certificate]
) -> None:
    body = records.certificate_body(make_certificate()) | {
        "@odata.type": "#microsoft.graph.userPfxCertificat"
    }
    with pytest.raises(GraphError, match="could not be resolved by the model"):
        graph.create_pfx(body)


def test_a_lost_answer_to_a_post_is_not_sent_again_blind(
    emulator: Emulator, portal_graph: GraphClient, make_certificate: Callable[..., Certificate]
) -> None:
    certificate = make_certificate()
    record = uploads.queue_upload(certificate)
    emulator.config.lost_answers = 1
    with pytest.raises(uploads.RetryLater):
        uploads.upload(record.pk, client=portal_graph)
    assert emulator.state.stats.posts == 1
    # The task's retry reads the record back and finds it there: no second POST, no 409.
    assert uploads.upload(record.pk, client=portal_graph) == "synced"
    certificate.refresh_from_db()
    assert certificate.graph_state == GraphState.SYNCED
    assert emulator.state.stats.posts == 1
    assert emulator.state.stats.conflicts == 0
    assert len(emulator.state.pfx) == 1


def test_a_profile_with_a_wrong_type_an_unknown_setting_or_a_wrong_target_is_refused(
    graph: GraphClient,
) -> None:
    from graph import intune_calls as calls

    base = {
        "@odata.type": "#microsoft.graph.iosImportedPFXCertificateProfile",
        "displayName": "iOS mail",
        "intendedPurpose": "smimeEncryption",
    }
    with pytest.raises(GraphError, match="The property 'keyStorageProvider' does not exist on type"):
        calls.create_configuration(graph, base | {"keyStorageProvider": "useSoftwareKsp"})
    with pytest.raises(GraphError, match="could not be resolved by the model"):
        calls.create_configuration(graph, base | {"@odata.type": "#microsoft.graph.iosImportedPfxProfile"})
    with pytest.raises(GraphError, match="Cannot convert the literal 'email'"):
        calls.create_configuration(graph, base | {"intendedPurpose": "email"})
    created = calls.create_configuration(graph, base)
    with pytest.raises(GraphError, match="is not compatible"):
        calls.assign(
            graph, created["id"], [{"target": {"@odata.type": "#microsoft.graph.userPFXCertificate"}}]
        )
    with pytest.raises(GraphError, match="The property 'groupId' does not exist on type"):
        calls.assign(
            graph,
            created["id"],
            [{"target": {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget", "groupId": "x"}}],
        )
