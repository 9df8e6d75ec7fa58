from __future__ import annotations

import datetime as dt

import pytest

from certs.pfx import ProblemError
from certs.pfx.graph_body import userpfx_body

NOT_BEFORE = dt.datetime(2024, 3, 1, 9, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
NOT_AFTER = dt.datetime(2417, 8, 22, 22, 0, 35, tzinfo=dt.UTC)


def _body(**overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "thumbprint": "F5E1ACB8C9C55A17605930515661548FB4CFC64C",
        "upn": "IWUser0@contoso.onmicrosoft.com",
        "not_before": NOT_BEFORE,
        "not_after": NOT_AFTER,
        "provider_name": "Microsoft Software Key Storage Provider",
        "key_name": "IntuneImportPFXTestKey",
        "pfx": b"\x30\x82pfx",
        "encrypted_password": b"\x01" * 256,
    }
    return userpfx_body(**(values | overrides))  # type: ignore[arg-type]


def test_purpose_and_padding_in_pfximport_casing_are_sent_as_graph_enum_members() -> None:
    body = _body(purpose="SmimeSigning", padding="OaepSha256")
    assert (body["intendedPurpose"], body["paddingScheme"]) == ("smimeSigning", "oaepSha256")
    assert _body()["intendedPurpose"] == "unassigned" and _body()["paddingScheme"] == "oaepSha512"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"purpose": "smime"}, "bad_purpose"),
        ({"purpose": ""}, "bad_purpose"),
        ({"padding": "pkcs1"}, "bad_padding"),
        ({"padding": "none"}, "bad_padding"),
        ({"padding": "oaepSha1"}, "bad_padding"),
    ],
)
def test_a_purpose_or_padding_the_connector_cannot_use_is_refused(change: dict[str, str], code: str) -> None:
    with pytest.raises(ProblemError) as caught:
        _body(**change)
    assert caught.value.code == code


def test_dates_are_sent_in_utc_to_the_second_and_the_thumbprint_in_lower_case() -> None:
    body = _body()
    assert body["startDateTime"] == "2024-03-01T07:30:15Z"
    assert body["expirationDateTime"] == "2417-08-22T22:00:35Z"
    assert body["thumbprint"] == "f5e1acb8c9c55a17605930515661548fb4cfc64c"


def test_a_body_without_the_connector_key_names_is_refused() -> None:
    with pytest.raises(ValueError, match="required"):
        _body(key_name="")
