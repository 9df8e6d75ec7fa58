"""Forms for the directory pages: list filters (query strings included) and the CSV import."""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms
from django.db.models import Q, QuerySet

from directory.models import Device, Group, Platform, UserSource

SEARCH_MAX = 200


class ListFilterForm(forms.Form):
    """Search, filters and sort of a list page. Subclasses name their sortable columns in ``SORTS``."""

    # sort key -> model ordering; each key is also accepted with a leading "-" for descending.
    SORTS: ClassVar[dict[str, tuple[str, ...]]] = {}
    DEFAULT_SORT: ClassVar[str] = ""

    q = forms.CharField(
        required=False,
        max_length=SEARCH_MAX,
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off"}),
    )
    sort = forms.ChoiceField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        keys = [*self.SORTS, *(f"-{key}" for key in self.SORTS)]
        self.fields["sort"].choices = [("", ""), *((k, k) for k in keys)]  # type: ignore[attr-defined]

    def clean_q(self) -> str:
        return " ".join(str(self.cleaned_data.get("q") or "").split())

    @property
    def current_sort(self) -> str:
        data = getattr(self, "cleaned_data", {})
        return str(data.get("sort") or self.DEFAULT_SORT)

    def ordering(self) -> list[str]:
        sort = self.current_sort
        descending = sort.startswith("-")
        fields = self.SORTS[sort.lstrip("-")]
        return [f"-{f}" if descending else f for f in fields]

    def apply(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return self.filter(queryset).order_by(*self.ordering())

    def filter(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        raise NotImplementedError


def _removed_state(queryset: QuerySet[Any], state: str) -> QuerySet[Any]:
    if state == "removed":
        return queryset.filter(removed_at__isnull=False)
    if state == "all":
        return queryset
    return queryset.filter(removed_at__isnull=True)


class UserFilterForm(ListFilterForm):
    SORTS: ClassVar[dict[str, tuple[str, ...]]] = {
        "name": ("display_name", "upn"),
        "upn": ("upn",),
        "mail": ("mail", "upn"),
        "department": ("department", "display_name"),
        "title": ("job_title", "display_name"),
    }
    DEFAULT_SORT = "name"

    state = forms.ChoiceField(
        required=False,
        label="Status",
        choices=[
            ("", "In directory"),
            ("enabled", "Sign-in enabled"),
            ("disabled", "Sign-in blocked"),
            ("review", "Gone from Entra ID, to review"),
            ("removed", "Removed"),
            ("all", "All, removed included"),
        ],
    )
    source = forms.ChoiceField(
        required=False, label="Source", choices=[("", "All sources"), *UserSource.choices]
    )

    def filter(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        data = self.cleaned_data
        state = data.get("state") or ""
        queryset = _removed_state(queryset, state)
        if state == "enabled":
            queryset = queryset.filter(account_enabled=True)
        elif state == "disabled":
            queryset = queryset.filter(account_enabled=False)
        elif state == "review":
            queryset = queryset.filter(missing_from_entra_at__isnull=False)
        if data.get("source"):
            queryset = queryset.filter(source=data["source"])
        for word in (data.get("q") or "").split():
            queryset = queryset.filter(
                Q(upn__icontains=word)
                | Q(display_name__icontains=word)
                | Q(mail__icontains=word)
                | Q(given_name__icontains=word)
                | Q(surname__icontains=word)
            )
        return queryset


class GroupFilterForm(ListFilterForm):
    SORTS: ClassVar[dict[str, tuple[str, ...]]] = {
        "name": ("display_name",),
        "kind": ("kind", "display_name"),
        "members": ("member_count", "display_name"),
    }
    DEFAULT_SORT = "name"

    kind = forms.ChoiceField(required=False, label="Group type", choices=[("", "All"), *Group.Kind.choices])
    state = forms.ChoiceField(
        required=False,
        label="Status",
        choices=[("", "In directory"), ("removed", "Removed"), ("all", "All, removed included")],
    )

    def filter(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        data = self.cleaned_data
        queryset = _removed_state(queryset, data.get("state") or "")
        if data.get("kind"):
            queryset = queryset.filter(kind=data["kind"])
        for word in (data.get("q") or "").split():
            queryset = queryset.filter(Q(display_name__icontains=word) | Q(description__icontains=word))
        return queryset


class DeviceFilterForm(ListFilterForm):
    SORTS: ClassVar[dict[str, tuple[str, ...]]] = {
        "name": ("name",),
        "platform": ("platform", "name"),
        "os": ("os_version_key", "name"),
        "user": ("primary_user__display_name", "name"),
        "checkin": ("last_check_in", "name"),
    }
    DEFAULT_SORT = "name"

    platform = forms.ChoiceField(required=False, label="Platform", choices=[("", "All"), *Platform.choices])
    ownership = forms.ChoiceField(
        required=False, label="Ownership", choices=[("", "All"), *Device.Ownership.choices]
    )
    state = forms.ChoiceField(
        required=False,
        label="Status",
        choices=[("", "Managed"), ("removed", "Removed"), ("all", "All, removed included")],
    )

    def filter(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        data = self.cleaned_data
        queryset = _removed_state(queryset, data.get("state") or "")
        if data.get("platform"):
            queryset = queryset.filter(platform=data["platform"])
        if data.get("ownership"):
            queryset = queryset.filter(ownership=data["ownership"])
        for word in (data.get("q") or "").split():
            platforms = [
                value for value, label in Platform.choices if word.lower() in f"{value} {label}".lower()
            ]
            queryset = queryset.filter(
                Q(name__icontains=word)
                | Q(platform__in=platforms)
                | Q(os_version__icontains=word)
                | Q(os_edition__icontains=word)
                | Q(model__icontains=word)
                | Q(serial_number__icontains=word)
                | Q(primary_user__upn__icontains=word)
                | Q(primary_user__display_name__icontains=word)
            )
        return queryset


class ImportForm(forms.Form):
    class Kind:
        USERS = "users"
        MEMBERSHIPS = "memberships"

    kind = forms.ChoiceField(
        label="What the file holds",
        choices=[(Kind.USERS, "Users"), (Kind.MEMBERSHIPS, "Group memberships")],
        widget=forms.RadioSelect,
        initial=Kind.USERS,
    )
    file = forms.FileField(label="CSV file", help_text="UTF-8 CSV with a header row, at most 5 MB.")
