from __future__ import annotations

import json

import pytest
from django import forms
from django.contrib import messages
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.management.base import CommandError
from django.http import HttpRequest, JsonResponse
from django.test import RequestFactory

from portal.lib import refusal
from portal.lib.refusal import Refused
from portal.models import ScopeTag


class TagForm(forms.Form):
    name = forms.CharField()
    description = forms.CharField(required=False)


def _request() -> HttpRequest:
    request = RequestFactory().post("/")
    request._messages = CookieStorage(request)  # type: ignore[attr-defined]
    return request


def _messages(request: HttpRequest) -> list[str]:
    return [str(m) for m in messages.get_messages(request)]


def _form() -> TagForm:
    form = TagForm({"name": "Paris"})
    assert form.is_valid()
    return form


def test_a_refusal_carries_its_code_message_status_and_field() -> None:
    refused = Refused("key_not_proven", "Prove the key first.", status=409, field="to_key")
    assert (refused.code, refused.message, refused.status, refused.field) == (
        "key_not_proven",
        "Prove the key first.",
        409,
        "to_key",
    )
    assert str(refused) == "Prove the key first."
    assert refused.text == "Prove the key first. (code key_not_proven)"
    plain = Refused("not_running", "This import has already finished.")
    assert (plain.status, plain.field) == (400, None)


@pytest.mark.parametrize(
    "code", ["", "Not_Snake", "two words", "kebab-case", "_leading", "trailing_", "9lives"]
)
def test_a_code_that_is_not_snake_case_is_refused_when_the_refusal_is_made(code: str) -> None:
    with pytest.raises(ValueError, match="snake_case"):
        Refused(code, "A message.")


def test_a_validation_error_about_one_field_becomes_a_refusal_on_that_field() -> None:
    error = ValidationError(
        {"name": ValidationError("Scope tag with this Name already exists.", code="unique")}
    )
    refused = Refused.from_validation_error(error)
    assert (refused.code, refused.field) == ("unique", "name")
    assert refused.message == "Scope tag with this Name already exists."


def test_a_validation_error_about_several_fields_keeps_every_message_and_names_no_field() -> None:
    error = ValidationError(
        {
            "name": ValidationError("Enter a name.", code="blank"),
            NON_FIELD_ERRORS: ValidationError("Dates are the wrong way round.", code="order"),
        }
    )
    refused = Refused.from_validation_error(error)
    assert (refused.code, refused.field) == ("blank", None)
    assert refused.message == "Enter a name. Dates are the wrong way round."


def test_a_validation_error_without_a_usable_code_is_refused_as_invalid() -> None:
    assert Refused.from_validation_error(ValidationError("Not right.")).code == refusal.INVALID
    odd = Refused.from_validation_error(ValidationError("Not right.", code="Odd-Code"))
    assert (odd.code, odd.message, odd.field) == (refusal.INVALID, "Not right.", None)


@pytest.mark.django_db
def test_full_clean_refuses_with_what_the_model_validation_found() -> None:
    ScopeTag.objects.create(name="Paris")
    with pytest.raises(Refused) as refused:
        refusal.full_clean(ScopeTag(name="Paris"))
    assert (refused.value.code, refused.value.field) == ("unique", "name")
    assert isinstance(refused.value.__cause__, ValidationError)
    refusal.full_clean(ScopeTag(name="Oslo"))
    refusal.full_clean(ScopeTag(name="Paris"), exclude=["name"])


def test_a_refusal_in_the_block_goes_on_its_field_and_the_rest_of_the_block_is_skipped() -> None:
    request, form = _request(), _form()
    reached = False
    with refusal.shown(request, form) as outcome:
        raise Refused("default_tag", "The Default tag keeps its name.", field="name")
        reached = True  # type: ignore[unreachable]
    assert not reached
    assert outcome.refused is not None and outcome.refused.code == "default_tag"
    assert form.errors == {"name": ["The Default tag keeps its name. (code default_tag)"]}
    assert _messages(request) == []


def test_a_refusal_about_a_field_the_form_lacks_goes_on_the_given_field_or_above_the_form() -> None:
    form = _form()
    with refusal.shown(_request(), form, field="description"):
        raise Refused("bad_public_key", "Not an RSA public key.", field="key_file")
    assert form.errors == {"description": ["Not an RSA public key. (code bad_public_key)"]}

    form = _form()
    with refusal.shown(_request(), form):
        raise Refused("role_in_use", "Delete the assignments first.", field="key_file")
    assert form.non_field_errors() == ["Delete the assignments first. (code role_in_use)"]


def test_without_a_form_a_refusal_becomes_an_error_message() -> None:
    request = _request()
    with refusal.shown(request):
        raise Refused("not_running", "This import has already finished.")
    assert _messages(request) == ["This import has already finished. (code not_running)"]
    assert [m.level for m in messages.get_messages(request)] == [messages.ERROR]


def test_a_block_that_is_not_refused_runs_to_its_end_and_shows_nothing() -> None:
    request, form = _request(), _form()
    with refusal.shown(request, form) as outcome:
        done = True
    assert done and outcome.refused is None
    assert form.errors == {} and _messages(request) == []


def test_an_error_that_is_not_a_refusal_still_fails_the_request() -> None:
    request = _request()
    with pytest.raises(ValidationError), refusal.shown(request):
        raise ValidationError("A form's own validation is not a service refusal.")
    assert _messages(request) == []


def test_an_api_answers_a_refusal_with_its_code_message_and_status() -> None:
    response = refusal.json_response(Refused("rate_limited", "Too many requests; slow down.", status=429))
    assert response.status_code == 429
    assert json.loads(response.content) == {
        "error": {"code": "rate_limited", "message": "Too many requests; slow down."}
    }


def test_a_json_view_answers_its_refusals_and_returns_its_own_answers_untouched() -> None:
    @refusal.answers_json
    def view(request: HttpRequest, *, refuse: bool) -> JsonResponse:
        if refuse:
            raise Refused("invalid_token", "The enrollment token is not known.", status=401)
        return JsonResponse({"ok": True}, status=201)

    refused = view(_request(), refuse=True)
    assert refused.status_code == 401
    assert json.loads(refused.content)["error"]["code"] == "invalid_token"
    answered = view(_request(), refuse=False)
    assert (answered.status_code, json.loads(answered.content)) == (201, {"ok": True})
    assert view.__name__ == "view"


def test_a_command_stops_with_the_code_and_the_message() -> None:
    @refusal.stops_command
    def handle(refuse: bool) -> str:
        if refuse:
            raise Refused("demo_in_production", "The demo is refused with PORTAL_ENV=production.")
        return "done"

    with pytest.raises(CommandError) as stopped:
        handle(True)
    assert str(stopped.value) == "demo_in_production: The demo is refused with PORTAL_ENV=production."
    assert handle(False) == "done"
    assert (
        str(refusal.command_error(Refused("not_connected", "Connect first.")))
        == "not_connected: Connect first."
    )


def test_a_command_does_not_hide_errors_that_are_not_refusals() -> None:
    @refusal.stops_command
    def handle() -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        handle()
