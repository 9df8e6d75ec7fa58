from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.db.models import QuerySet

from certs.models import EncryptionKey, ImportBatch


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


class DropFolderForm(forms.Form):
    """A drop folder's settings; the service (``api.dropfolder``) decides what is refused, next to each field."""

    name = forms.CharField(
        max_length=100, help_text="Shown in lists, alerts and the audit log, e.g. Nightly CA."
    )
    directory = forms.CharField(
        max_length=100,
        help_text="The folder's directory under API_DROP_ROOT: letters, digits, hyphens and underscores.",
    )
    encryption_key = forms.ModelChoiceField(
        queryset=EncryptionKey.objects.none(),
        to_field_name="code",
        empty_label=None,
        help_text="The connector key the imported passwords are encrypted with.",
        error_messages={
            "invalid_choice": "No such encryption key, or not one you may use (code no_key).",
        },
    )
    on_duplicate = forms.ChoiceField(
        label="Certificates already imported",
        choices=ImportBatch.OnDuplicate.choices,
        initial=ImportBatch.OnDuplicate.SKIP,
    )

    def __init__(
        self, *args: Any, keys: QuerySet[EncryptionKey], editing: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["encryption_key"].queryset = keys  # type: ignore[attr-defined]
        if editing:
            del self.fields["directory"]  # the CA's export job writes there: a new one is a new folder
