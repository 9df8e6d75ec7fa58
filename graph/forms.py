from __future__ import annotations

from typing import Any

from django import forms

from graph.connection import ConnectionInput, certificate_credential
from graph.models import TenantConnection


class ConnectionForm(forms.Form):
    tenant_id = forms.CharField(
        label="Tenant id", max_length=100, help_text="Directory (tenant) id or a verified domain."
    )
    client_id = forms.CharField(label="Application (client) id", max_length=100)
    cloud = forms.ChoiceField(label="National cloud", choices=TenantConnection.Cloud.choices)
    credential_kind = forms.ChoiceField(
        label="Credential", choices=TenantConnection.Credential.choices, widget=forms.RadioSelect
    )
    secret = forms.CharField(
        label="Client secret",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Stored encrypted and never shown again. Leave blank to keep the stored one.",
    )
    certificate_pem = forms.CharField(
        label="Certificate and private key (PEM)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "class": "mono", "autocomplete": "off"}),
        help_text="The certificate registered on the app and its unencrypted private key. Stored encrypted.",
    )
    write_limit = forms.IntegerField(
        label="Write budget: writes",
        min_value=0,
        help_text="Uploads and deletions all workers together start per window. Intune allows 100 per 20 s per app.",
    )
    write_window_seconds = forms.FloatField(label="Write budget: window (seconds)", min_value=0.1)
    authority_url = forms.URLField(
        label="Sign-in endpoint override",
        required=False,
        help_text="Only for a Graph emulator or test tenant.",
    )
    graph_url = forms.URLField(label="Graph endpoint override", required=False)
    ca_certificate = forms.CharField(
        label="Trusted CA for the overrides (PEM)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
    )

    def __init__(self, *args: Any, has_credential: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.has_credential = has_credential

    def clean_certificate_pem(self) -> str:
        pem = str(self.cleaned_data.get("certificate_pem") or "").strip()
        if pem:
            try:
                certificate_credential(pem)
            except ValueError as exc:
                raise forms.ValidationError(f"Cannot use this PEM: {exc}") from exc
        return pem

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("credential_kind")
        given = (
            data.get("secret") if kind == TenantConnection.Credential.SECRET else data.get("certificate_pem")
        )
        if not given and not self.has_credential:
            raise forms.ValidationError("Give a client secret or a certificate.")
        return data

    def to_input(self) -> ConnectionInput:
        d = self.cleaned_data
        return ConnectionInput(
            tenant_id=d["tenant_id"],
            client_id=d["client_id"],
            cloud=d["cloud"],
            credential_kind=d["credential_kind"],
            secret=d.get("secret") or "",
            certificate_pem=d.get("certificate_pem") or "",
            authority_url=d.get("authority_url") or "",
            graph_url=d.get("graph_url") or "",
            ca_certificate=d.get("ca_certificate") or "",
            write_limit=d["write_limit"],
            write_window_seconds=d["write_window_seconds"],
        )
