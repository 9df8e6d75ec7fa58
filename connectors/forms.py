from __future__ import annotations

from typing import Any

from django import forms

from certs.models import EncryptionKey

NOT_PROVEN_REASON = "added by hand: no connector has proven it holds this key"


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="Name of the connector that will use the token; tip: name it after its server.",
    )
    hours = forms.IntegerField(label="Valid for (hours)", min_value=1, max_value=168, initial=24)


class RenameForm(forms.Form):
    name = forms.CharField(max_length=100)


class ProvenKeySelect(forms.Select):
    """Lists every key, but a key without proof of possession is a disabled choice that says why."""

    def create_option(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option: dict[str, Any] = super().create_option(*args, **kwargs)
        key = getattr(option["value"], "instance", None)
        if isinstance(key, EncryptionKey) and not key.possession_proven:
            option["attrs"]["disabled"] = True
            option["label"] = f"{option['label']} ({NOT_PROVEN_REASON})"
        return option


class RotationForm(forms.Form):
    from_key = forms.ModelChoiceField(queryset=EncryptionKey.objects.none(), label="Rotate from")
    to_key = forms.ModelChoiceField(
        queryset=EncryptionKey.objects.none(), label="Re-wrap passwords to", widget=ProvenKeySelect
    )

    def __init__(self, *args: Any, keys: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["from_key"].queryset = keys  # type: ignore[attr-defined]
        self.fields["to_key"].queryset = keys  # type: ignore[attr-defined]

    def clean_to_key(self) -> EncryptionKey | None:
        key: EncryptionKey | None = self.cleaned_data.get("to_key")
        if key is not None and not key.possession_proven:
            raise forms.ValidationError(f"{key} cannot receive re-wrapped passwords: {NOT_PROVEN_REASON}.")
        return key

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("from_key") and data.get("from_key") == data.get("to_key"):
            raise forms.ValidationError("Choose two different keys.")
        return data

    @property
    def unproven_keys(self) -> list[EncryptionKey]:
        return [k for k in self.fields["to_key"].queryset if not k.possession_proven]  # type: ignore[attr-defined]
