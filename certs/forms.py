"""Forms of the certificate pages: keys, imports, retries and the certificate list filters."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from django import forms
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from certs.held import Held
from certs.models import Certificate, EncryptionKey, GraphState, ImportBatch, Padding, Purpose
from directory.models import DirectoryUser

KEY_FILE_MAX = 64 * 1024


class KeyForm(forms.Form):
    key_file = forms.FileField(
        label="Public key file",
        help_text="PEM (BEGIN PUBLIC KEY) or the CNG blob written by Export-IntunePublicKey. Never a private key.",
    )
    provider_name = forms.CharField(max_length=200, initial="Microsoft Software Key Storage Provider")
    key_name = forms.CharField(max_length=200, initial="PFXEncryptionKey")
    default_padding = forms.ChoiceField(choices=Padding.choices, initial=Padding.OAEP_SHA512)
    make_default = forms.BooleanField(required=False, label="Use for new imports (default key)")

    def clean_key_file(self) -> bytes:
        upload = self.cleaned_data["key_file"]
        if upload.size > KEY_FILE_MAX:
            raise forms.ValidationError("A public key file is a few hundred bytes; this one is too large.")
        return bytes(upload.read())


def key_choices(keys: QuerySet[EncryptionKey]) -> forms.ModelChoiceField:  # type: ignore[type-arg]
    return forms.ModelChoiceField(
        queryset=keys,
        label="Encryption key",
        empty_label=None,
        initial=keys.filter(is_default=True).first(),
        help_text="The connector's public key that protects the password.",
    )


class SingleImportForm(forms.Form):
    """One PFX file. After a full-page check the file and password may come from ``held`` instead:
    the page is never given the password back, so an empty file input and password box then
    mean "the ones checked before"."""

    file = forms.FileField(label="PFX file", required=False, allow_empty_file=True)
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        required=False,
        strip=False,
    )
    upn = forms.CharField(
        label="User",
        max_length=255,
        help_text="Type a UPN or a name and pick the user.",
        widget=forms.TextInput(attrs={"list": "directory-users", "autocomplete": "off"}),
    )
    purpose = forms.ChoiceField(
        choices=Purpose.choices, initial=Purpose.SMIME_ENCRYPTION, label="Intended purpose"
    )
    on_duplicate = forms.ChoiceField(
        choices=ImportBatch.OnDuplicate.choices,
        initial=ImportBatch.OnDuplicate.SKIP,
        label="If already imported",
    )

    def __init__(
        self, *args: Any, keys: QuerySet[EncryptionKey], held: Held | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["key"] = key_choices(keys)
        self.held = held

    def clean_file(self) -> bytes | None:
        # An empty file is not refused here: the check reports it with its code (empty_file).
        upload = self.cleaned_data["file"]
        return None if upload is None else bytes(upload.read())

    def clean_upn(self) -> str:
        upn = self.cleaned_data["upn"].strip()
        user = (
            DirectoryUser.objects.annotate(u=Lower("upn"))
            .filter(u=upn.lower(), removed_at__isnull=True)
            .first()
        )
        if user is None:
            raise forms.ValidationError("No user in the directory has this UPN (code unknown_upn).")
        self.directory_user = user
        return user.upn

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("file") is not None:
            data["filename"] = str(getattr(self.files.get("file"), "name", "") or "upload.pfx")
        elif self.held is not None:
            data["file"], data["filename"] = self.held.data, self.held.filename
        elif "file" not in self.errors:
            self.add_error("file", "Choose the PFX file.")
        if not data.get("password") and self.held is not None:
            data["password"] = self.held.password
        return data

    def file_and_password(self) -> tuple[str, bytes, str] | None:
        """The file (with its name) and password this form ended up with, to hold for the next step."""
        data = getattr(self, "cleaned_data", {})
        if not data.get("file"):
            return None
        return str(data.get("filename", "upload.pfx")), bytes(data["file"]), str(data.get("password") or "")


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input; the view reads them from ``request.FILES.getlist``."""

    def clean(self, data: Any, initial: Any = None) -> Any:
        if isinstance(data, list | tuple):
            return [super(MultipleFileField, self).clean(d, initial) for d in data]
        return super().clean(data, initial)


class BulkImportForm(forms.Form):
    pfx_files = MultipleFileField(
        required=False,
        label="PFX files or one ZIP",
        widget=MultipleFileInput(attrs={"accept": ".pfx,.p12,.zip"}),
    )
    manifest = forms.FileField(label="Manifest (CSV)", help_text="Columns filename,upn,password,purpose.")
    on_duplicate = forms.ChoiceField(
        choices=ImportBatch.OnDuplicate.choices,
        initial=ImportBatch.OnDuplicate.SKIP,
        label="If already imported",
    )
    dry_run = forms.BooleanField(required=False, label="Dry run: validate everything, change nothing")

    def __init__(self, *args: Any, keys: QuerySet[EncryptionKey], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["key"] = key_choices(keys)


class RetryForm(forms.Form):
    """One password field per failed row, named ``password-<item id>``; empty ones are left alone."""

    def __init__(self, *args: Any, item_ids: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for pk in item_ids:
            self.fields[f"password-{pk}"] = forms.CharField(
                required=False, strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "off"})
            )

    def passwords(self) -> dict[int, str]:
        return {
            int(name.split("-", 1)[1]): value
            for name, value in self.cleaned_data.items()
            if name.startswith("password-") and value
        }


class CertificateFilterForm(forms.Form):
    SORTS: ClassVar[dict[str, tuple[str, ...]]] = {
        "upn": ("upn", "-not_after"),
        "expires": ("not_after", "upn"),
        "issuer": ("issuer", "upn"),
        "purpose": ("purpose", "upn"),
        "imported": ("created_at", "upn"),
    }
    DEFAULT_SORT = "expires"

    q = forms.CharField(
        required=False, max_length=200, label="Search", widget=forms.TextInput(attrs={"type": "search"})
    )
    purpose = forms.ChoiceField(required=False, choices=[("", "Any purpose"), *Purpose.choices])
    state = forms.ChoiceField(
        required=False,
        label="Graph state",
        choices=[("", "Any state"), *GraphState.choices, ("expired", "Expired"), ("valid", "Valid")],
    )
    issuer = forms.CharField(required=False, max_length=200)
    expiring = forms.IntegerField(required=False, min_value=0, max_value=3650, label="Expiring within (days)")
    sort = forms.ChoiceField(required=False, widget=forms.HiddenInput)
    batch = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        keys = [*self.SORTS, *(f"-{k}" for k in self.SORTS)]
        self.fields["sort"].choices = [("", ""), *((k, k) for k in keys)]  # type: ignore[attr-defined]

    @property
    def current_sort(self) -> str:
        return str(getattr(self, "cleaned_data", {}).get("sort") or self.DEFAULT_SORT)

    def apply(self, queryset: QuerySet[Certificate]) -> QuerySet[Certificate]:
        data = self.cleaned_data
        now = timezone.now()
        if data["q"]:
            q = data["q"]
            queryset = queryset.filter(
                Q(upn__icontains=q) | Q(subject__icontains=q) | Q(thumbprint__istartswith=q.lower())
            )
        if data["purpose"]:
            queryset = queryset.filter(purpose=data["purpose"])
        if data["state"] == "expired":
            queryset = queryset.filter(not_after__lte=now)
        elif data["state"] == "valid":
            queryset = queryset.filter(not_after__gt=now)
        elif data["state"]:
            queryset = queryset.filter(graph_state=data["state"])
        if data["issuer"]:
            queryset = queryset.filter(issuer__icontains=data["issuer"])
        if data["batch"]:
            queryset = queryset.filter(batch__code=data["batch"])
        if data["expiring"] is not None:
            queryset = queryset.filter(
                not_after__gt=now, not_after__lte=now + timedelta(days=data["expiring"])
            )
        sort = self.current_sort
        fields = self.SORTS[sort.lstrip("-")]
        return queryset.order_by(*(f"-{f.lstrip('-')}" if sort.startswith("-") else f for f in fields))


class SelectCertificatesForm(forms.Form):
    certificates = forms.TypedMultipleChoiceField(coerce=int, choices=[])
    confirm = forms.BooleanField(required=False)

    def __init__(self, *args: Any, choices: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["certificates"].choices = choices  # type: ignore[attr-defined]


class CleanupForm(forms.Form):
    """Which expired certificates to remove tenant-wide: chosen by rule, not one by one."""

    # Signing certificates are not needed to read old mail: superseded ones are the safe default.
    DEFAULTS: ClassVar[dict[str, str]] = {
        "purpose": Purpose.SMIME_SIGNING,
        "expired_days": "30",
        "superseded_only": "on",
    }

    purpose = forms.ChoiceField(
        required=False,
        choices=[
            ("", "Any purpose"),
            (Purpose.SMIME_SIGNING, "S/MIME signing"),
            (Purpose.SMIME_ENCRYPTION, "S/MIME encryption"),
            (Purpose.UNASSIGNED, "Unassigned"),
        ],
    )
    expired_days = forms.IntegerField(min_value=0, max_value=3650, label="Expired at least (days ago)")
    superseded_only = forms.BooleanField(
        required=False,
        label="Only when the user has a valid certificate for the same purpose",
    )
    # The count the admin saw: if the list changed since, it is shown again instead of removed.
    expected = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    confirm = forms.BooleanField(required=False)

    def select(self, certificates: QuerySet[Certificate]) -> QuerySet[Certificate]:
        data = self.cleaned_data
        now = timezone.now()
        chosen = certificates.filter(not_after__lte=now - timedelta(days=data["expired_days"]))
        if data["purpose"]:
            chosen = chosen.filter(purpose=data["purpose"])
        if data["superseded_only"]:
            successor = Certificate.objects.filter(
                user=OuterRef("user"), purpose=OuterRef("purpose"), not_after__gt=now
            )
            chosen = chosen.filter(Exists(successor))
        return chosen.order_by("upn", "not_after")
