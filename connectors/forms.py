from __future__ import annotations

from typing import Any

from django import forms

from certs.models import EncryptionKey


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="Name of the connector that will use the token; tip: name it after its server.",
    )
    hours = forms.IntegerField(label="Valid for (hours)", min_value=1, max_value=168, initial=24)


class RenameForm(forms.Form):
    name = forms.CharField(max_length=100)


class RotationForm(forms.Form):
    from_key = forms.ModelChoiceField(queryset=EncryptionKey.objects.none(), label="Rotate from")
    to_key = forms.ModelChoiceField(queryset=EncryptionKey.objects.none(), label="Re-wrap passwords to")

    def __init__(self, *args: Any, keys: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["from_key"].queryset = keys  # type: ignore[attr-defined]
        self.fields["to_key"].queryset = keys  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("from_key") and data.get("from_key") == data.get("to_key"):
            raise forms.ValidationError("Choose two different keys.")
        return data
