"""Filters of the delivery pages."""

from __future__ import annotations

import contextlib
import uuid

from django import forms
from django.db.models import Q

from directory.models import Device, Platform
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


class CredentialFilterForm(forms.Form):
    """Devices > Enrolment: the device credentials, by device name and state."""

    q = forms.CharField(label="Device name", required=False, max_length=200)
    state = forms.ChoiceField(
        required=False, choices=[("", "Any state"), ("active", "Active"), ("revoked", "Revoked")]
    )

    def clean_q(self) -> str:
        return " ".join(str(self.cleaned_data.get("q") or "").split())


class TokenIssueForm(forms.Form):
    """Devices > Enrolment > Issue token: one directory device, found by name or Intune device ID."""

    device = forms.CharField(
        max_length=255, help_text="The device's name or its Intune device ID, as on its page."
    )
    hours = forms.IntegerField(label="Valid for (hours)", min_value=1, max_value=24 * 30, initial=24)

    def clean_device(self) -> Device:
        text = str(self.cleaned_data.get("device") or "").strip()
        match = Q(name__iexact=text)
        with contextlib.suppress(ValueError):
            match |= Q(device_id=uuid.UUID(text))
        found = list(Device.objects.filter(match, removed_at=None)[:2])
        if not found:
            raise forms.ValidationError("No device in the directory has this name or ID.")
        if len(found) > 1:
            raise forms.ValidationError("More than one device has this name: enter its Intune device ID.")
        return found[0]
