"""Forms for the creation wizard, the Properties sections, and the list and report filters."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.db.models import QuerySet

from directory.models import Group, Platform, WindowsEdition, version_key
from portal import access
from portal.models import ScopeTag, User
from profiles.models import (
    ApplicabilityRule,
    CertificateAccess,
    IntendedPurpose,
    KeyStorageProvider,
    Profile,
    ProfileType,
)
from profiles.specs import RuleSpec
from profiles.targeting import STATE_LABELS, STATUSES

VERSION_RE = re.compile(r"^\d{1,10}(\.\d{1,10}){0,3}$")
PACKAGE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$")
MAX_RULES = 10


class CreateProfileForm(forms.Form):
    platform = forms.ChoiceField(choices=[("", "Select a platform"), *Platform.choices])
    profile_type = forms.ChoiceField(choices=ProfileType.choices, initial=ProfileType.PKCS_IMPORTED)


class BasicsForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: Any, profile: Profile | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.profile = profile

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise forms.ValidationError("Enter a name.")
        # Unique in the tenant, whoever can see the other profile.
        clash = Profile.objects.filter(name__iexact=name)
        if self.profile is not None:
            clash = clash.exclude(pk=self.profile.pk)
        if clash.exists():
            raise forms.ValidationError("A profile with this name already exists.")
        return name


class SettingsForm(forms.Form):
    """Configuration settings; with ``locked``, only what stays editable after creation."""

    intended_purpose = forms.ChoiceField(
        choices=IntendedPurpose.choices,
        initial=IntendedPurpose.UNASSIGNED,
        widget=forms.RadioSelect,
        help_text="Matched against the intended purpose of the imported certificates.",
    )
    key_storage_provider = forms.ChoiceField(
        label="Key storage provider (KSP)",
        choices=KeyStorageProvider.choices,
        initial=KeyStorageProvider.TPM_OTHERWISE_SOFTWARE,
        widget=forms.RadioSelect,
    )
    certificate_access = forms.ChoiceField(
        choices=CertificateAccess.choices, initial=CertificateAccess.USER_APPROVAL, widget=forms.RadioSelect
    )
    silent_access_packages = forms.CharField(
        label="Apps granted access silently",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "com.microsoft.office.outlook"}),
        help_text="Android package names, one per line.",
    )

    def __init__(self, *args: Any, platform: str, locked: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.platform = platform
        if platform != Platform.WINDOWS or locked:
            del self.fields["key_storage_provider"]
        if locked:
            del self.fields["intended_purpose"]
        if platform != Platform.ANDROID_FULLY_MANAGED:
            del self.fields["certificate_access"]
            del self.fields["silent_access_packages"]

    def clean_silent_access_packages(self) -> list[str]:
        raw = self.cleaned_data.get("silent_access_packages") or ""
        packages = sorted({line.strip() for line in re.split(r"[\s,]+", raw) if line.strip()})
        bad = [p for p in packages if not PACKAGE_RE.match(p)]
        if bad:
            raise forms.ValidationError(f"Not an Android package name: {', '.join(bad)}")
        return packages

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("certificate_access") == CertificateAccess.SPECIFIC_APPS and not data.get(
            "silent_access_packages"
        ):
            self.add_error("silent_access_packages", "List at least one app to grant access silently.")
        return data


class ScopeTagsForm(forms.Form):
    scope_tags = forms.ModelMultipleChoiceField(
        queryset=ScopeTag.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="You can give only the tags you hold. With none ticked, the profile gets your tags.",
    )

    def __init__(self, *args: Any, admin: User, permission: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["scope_tags"].queryset = access.held_tags(admin, permission)  # type: ignore[attr-defined]


def _group_choices() -> QuerySet[Group]:
    return Group.objects.filter(removed_at__isnull=True).order_by("display_name")


class GroupChoiceField(forms.ModelMultipleChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.display_name} ({obj.get_kind_display().lower()})"


class AssignmentsForm(forms.Form):
    all_users = forms.BooleanField(label="Add all users", required=False)
    all_devices = forms.BooleanField(label="Add all devices", required=False)
    include_groups = GroupChoiceField(queryset=Group.objects.none(), required=False, label="Included groups")
    exclude_groups = GroupChoiceField(queryset=Group.objects.none(), required=False, label="Excluded groups")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["include_groups"].queryset = _group_choices()  # type: ignore[attr-defined]
        self.fields["exclude_groups"].queryset = _group_choices()  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        both = set(data.get("include_groups") or []) & set(data.get("exclude_groups") or [])
        if both:
            names = ", ".join(sorted(g.display_name for g in both))
            raise forms.ValidationError(f"A group cannot be both included and excluded: {names}.")
        return data


class RuleForm(forms.Form):
    rule_type = forms.ChoiceField(
        label="Rule", choices=ApplicabilityRule.RuleType.choices, initial=ApplicabilityRule.RuleType.INCLUDE
    )
    os_property = forms.ChoiceField(
        label="Property",
        choices=[("", "Select a property"), *ApplicabilityRule.Property.choices],
        required=False,
    )
    editions = forms.MultipleChoiceField(
        label="OS editions",
        choices=WindowsEdition.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    min_version = forms.CharField(label="Minimum OS version", max_length=50, required=False)
    max_version = forms.CharField(label="Maximum OS version", max_length=50, required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        prop = data.get("os_property")
        if not prop:
            if data.get("editions") or data.get("min_version") or data.get("max_version"):
                self.add_error("os_property", "Choose OS edition or OS version.")
            return data
        if prop == ApplicabilityRule.Property.OS_EDITION and not data.get("editions"):
            self.add_error("editions", "Tick at least one edition.")
        if prop == ApplicabilityRule.Property.OS_VERSION:
            low, high = (data.get("min_version") or "").strip(), (data.get("max_version") or "").strip()
            for name, value in (("min_version", low), ("max_version", high)):
                if not value:
                    self.add_error(name, "Both the minimum and the maximum version are required.")
                elif not VERSION_RE.match(value):
                    self.add_error(name, "Enter a dotted version such as 10.0.19045.0.")
            both_valid = bool(VERSION_RE.match(low)) and bool(VERSION_RE.match(high))
            if both_valid and version_key(low) > version_key(high):
                self.add_error("max_version", "The maximum version must not be below the minimum.")
            data["min_version"], data["max_version"] = low, high
        return data

    def to_spec(self) -> RuleSpec | None:
        data = getattr(self, "cleaned_data", {})
        if not data.get("os_property") or data.get("DELETE"):
            return None
        edition = data["os_property"] == ApplicabilityRule.Property.OS_EDITION
        return RuleSpec(
            rule_type=data["rule_type"],
            os_property=data["os_property"],
            editions=tuple(data.get("editions") or ()) if edition else (),
            min_version="" if edition else data.get("min_version", ""),
            max_version="" if edition else data.get("max_version", ""),
        )


class BaseRuleFormSet(forms.BaseFormSet):  # type: ignore[type-arg]
    def specs(self) -> list[RuleSpec]:
        return [spec for form in self.forms if (spec := form.to_spec()) is not None]


RuleFormSet = forms.formset_factory(
    RuleForm, formset=BaseRuleFormSet, extra=1, max_num=MAX_RULES, validate_max=True, can_delete=True
)


def rule_initial(rules: list[RuleSpec]) -> list[dict[str, Any]]:
    return [
        {
            "rule_type": r.rule_type,
            "os_property": r.os_property,
            "editions": list(r.editions),
            "min_version": r.min_version,
            "max_version": r.max_version,
        }
        for r in rules
    ]


class ProfileFilterForm(forms.Form):
    q = forms.CharField(label="Search by name", required=False, max_length=200)
    platform = forms.ChoiceField(label="Platform", required=False, choices=[("", "All"), *Platform.choices])
    assigned = forms.ChoiceField(
        label="Assigned", required=False, choices=[("", "All"), ("yes", "Assigned"), ("no", "Not assigned")]
    )


REPORT_STATES = [("", "All targeted"), *((s, STATE_LABELS[s]) for s in STATUSES)]


class ReportFilterForm(forms.Form):
    status = forms.ChoiceField(
        required=False,
        choices=[*REPORT_STATES, ("excluded", "Excluded"), ("notTargeted", "Not targeted")],
    )
    error = forms.CharField(label="Error code", required=False, max_length=60)
    q = forms.CharField(label="Search", required=False, max_length=200)


class UserReportFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=REPORT_STATES)
    q = forms.CharField(label="Search", required=False, max_length=200)


class DuplicateForm(BasicsForm):
    pass
