from __future__ import annotations

from django import forms
from django.conf import settings


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. nightly CA export.")
    days = forms.IntegerField(
        label="Expires after (days)", min_value=1, initial=90, help_text="At most API_TOKEN_MAX_DAYS days."
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["days"].max_value = settings.API_TOKEN_MAX_DAYS  # type: ignore[attr-defined]
        self.fields["days"].help_text = f"From 1 to {settings.API_TOKEN_MAX_DAYS} days."


class ApplicationForm(forms.Form):
    name = forms.CharField(max_length=100)
    client_id = forms.CharField(
        label="Application (client) ID", max_length=36, help_text="From the app registration in Entra ID."
    )
