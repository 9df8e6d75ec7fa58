"""Filters of the delivery pages."""

from __future__ import annotations

from django import forms

from directory.models import Platform
from profiles.models import DeliveryStatus


class CertificateFilterForm(forms.Form):
    """Devices > Monitor > Certificates (and its CSV): every certificate on every device."""

    status = forms.ChoiceField(required=False, choices=[("", "Any state"), *DeliveryStatus.choices])
    error = forms.CharField(label="Error code", required=False, max_length=60)
    platform = forms.ChoiceField(required=False, choices=[("", "Any platform"), *Platform.choices])
    q = forms.CharField(
        label="Search",
        required=False,
        max_length=200,
        help_text="Device name, user principal name, or the start of a thumbprint",
    )

    def clean_error(self) -> str:
        return str(self.cleaned_data.get("error") or "").strip()

    def clean_q(self) -> str:
        return " ".join(str(self.cleaned_data.get("q") or "").split())
