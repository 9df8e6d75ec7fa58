from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils import timezone

from portal.models import AuditEvent

DATE_RANGES = {"day": 1, "week": 7, "month": 30}


class AuditFilterForm(forms.Form):
    category = forms.ChoiceField(required=False)
    activity = forms.CharField(required=False, max_length=200)
    actor = forms.CharField(required=False, max_length=254, label="Initiated by")
    actor_type = forms.ChoiceField(
        required=False, choices=[("", "Anyone"), *AuditEvent.ActorType.choices], label="Actor type"
    )
    result = forms.ChoiceField(required=False, choices=[("", "Any"), *AuditEvent.Result.choices])
    range = forms.ChoiceField(
        required=False,
        label="Date range",
        choices=[
            ("", "All time"),
            ("day", "Last day"),
            ("week", "Last week"),
            ("month", "Last month"),
            ("custom", "Custom"),
        ],
    )
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From")
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="To")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        categories = AuditEvent.objects.order_by("category").values_list("category", flat=True).distinct()
        self.fields["category"].choices = [("", "All"), *((c, c) for c in categories)]  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end and start > end:
            raise forms.ValidationError("The start date must be on or before the end date.")
        return data

    def filter(self, queryset: Any) -> Any:
        data = self.cleaned_data
        if data.get("category"):
            queryset = queryset.filter(category=data["category"])
        if data.get("activity"):
            queryset = queryset.filter(activity__icontains=data["activity"])
        if data.get("actor"):
            queryset = queryset.filter(actor_name__icontains=data["actor"])
        if data.get("actor_type"):
            queryset = queryset.filter(actor_type=data["actor_type"])
        if data.get("result"):
            queryset = queryset.filter(result=data["result"])
        days = DATE_RANGES.get(data.get("range") or "")
        if days:
            queryset = queryset.filter(occurred_at__gte=timezone.now() - dt.timedelta(days=days))
        if data.get("start"):
            queryset = queryset.filter(occurred_at__date__gte=data["start"])
        if data.get("end"):
            queryset = queryset.filter(occurred_at__date__lte=data["end"])
        return queryset
