"""The creation wizard's state: what each step received, kept in the session until Create.

Each step stores the raw fields it was last posted (Back keeps them too, unvalidated)
and whether they passed validation. Nothing is trusted from the session: the review
step and Create validate every step again.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

from django.forms import BaseFormSet, Form
from django.http import Http404, HttpRequest, QueryDict
from django.utils.datastructures import MultiValueDict

from directory.models import Platform
from portal import access
from portal.models import User
from profiles.forms import (
    AssignmentsForm,
    BaseRuleFormSet,
    BasicsForm,
    RuleFormSet,
    ScopeTagsForm,
    SettingsForm,
    rule_initial,
)
from profiles.services import ProfileDraft
from profiles.specs import GroupRef, TargetSpec

SESSION_KEY = "profile_wizards"
KEEP = 5  # wizards per session; older ones are dropped

STEP_LABELS: dict[str, str] = {
    "basics": "Basics",
    "settings": "Configuration settings",
    "scope": "Scope tags",
    "assignments": "Assignments",
    "rules": "Applicability rules",
    "review": "Review + create",
}

StepForm = Form | BaseFormSet  # type: ignore[type-arg]


class Wizard:
    def __init__(self, request: HttpRequest, wizard_id: str, state: dict[str, Any]) -> None:
        self.request = request
        self.id = wizard_id
        self.state = state

    # Session -----------------------------------------------------------------

    @classmethod
    def start(cls, request: HttpRequest, *, platform: str, profile_type: str) -> Wizard:
        wizards: dict[str, Any] = dict(request.session.get(SESSION_KEY, {}))
        while len(wizards) >= KEEP:
            wizards.pop(next(iter(wizards)))
        wizard_id = str(uuid.uuid4())
        wizards[wizard_id] = {"platform": platform, "profile_type": profile_type, "data": {}, "valid": []}
        request.session[SESSION_KEY] = wizards
        return cls(request, wizard_id, wizards[wizard_id])

    @classmethod
    def load(cls, request: HttpRequest, wizard_id: str) -> Wizard:
        state = request.session.get(SESSION_KEY, {}).get(str(wizard_id))
        if state is None:
            raise Http404("This profile wizard has expired. Start again.")
        return cls(request, str(wizard_id), state)

    def _save(self) -> None:
        wizards = dict(self.request.session.get(SESSION_KEY, {}))
        wizards[self.id] = self.state
        self.request.session[SESSION_KEY] = wizards

    def finish(self) -> None:
        wizards = dict(self.request.session.get(SESSION_KEY, {}))
        wizards.pop(self.id, None)
        self.request.session[SESSION_KEY] = wizards

    # Steps -------------------------------------------------------------------

    @property
    def platform(self) -> str:
        return str(self.state["platform"])

    @property
    def platform_label(self) -> str:
        return str(dict(Platform.choices).get(self.platform, self.platform))

    @property
    def steps(self) -> list[str]:
        return [s for s in STEP_LABELS if s != "rules" or self.platform == Platform.WINDOWS]

    def previous(self, step: str) -> str:
        i = self.steps.index(step)
        return self.steps[max(0, i - 1)]

    def next(self, step: str) -> str:
        i = self.steps.index(step)
        return self.steps[min(len(self.steps) - 1, i + 1)]

    def is_valid_step(self, step: str) -> bool:
        return step in self.state["valid"]

    def first_incomplete(self) -> str:
        for step in self.steps[:-1]:
            if not self.is_valid_step(step):
                return step
        return "review"

    def reachable(self, step: str) -> bool:
        return self.steps.index(step) <= self.steps.index(self.first_incomplete())

    def store(self, step: str, post: QueryDict) -> None:
        skip = {"csrfmiddlewaretoken", "action"}
        self.state["data"][step] = {k: post.getlist(k) for k in post if k not in skip}
        self._save()

    def mark(self, step: str, valid: bool) -> None:
        valid_steps = [s for s in self.state["valid"] if s != step]
        if valid:
            valid_steps.append(step)
        self.state["valid"] = valid_steps
        self._save()

    # Forms -------------------------------------------------------------------

    @property
    def admin(self) -> User:
        user = self.request.user
        assert isinstance(user, User)
        return user

    def _data(self, step: str) -> MultiValueDict[str, Any] | None:
        raw = self.state["data"].get(step)
        return MultiValueDict(raw) if raw is not None else None

    def form(self, step: str) -> StepForm:
        """The step's form: bound to what was entered, or unbound with defaults."""
        data = self._data(step)
        if step == "basics":
            return BasicsForm(data)
        if step == "settings":
            return SettingsForm(data, platform=self.platform)
        if step == "scope":
            initial = {"scope_tags": [t.pk for t in access.creator_tags(self.admin, "profiles")]}
            return ScopeTagsForm(data, admin=self.admin, permission="profiles.create", initial=initial)
        if step == "assignments":
            return AssignmentsForm(data)
        if step == "rules":
            formset = cast(BaseRuleFormSet, RuleFormSet(data, prefix="rules"))
            if data is not None and self.is_valid_step(step) and formset.is_valid():
                # Show the saved rules plus a blank row to add another.
                return RuleFormSet(prefix="rules", initial=rule_initial(formset.specs()))
            return formset
        raise Http404

    def draft(self) -> tuple[ProfileDraft | None, str | None]:
        """Validate every step again; return the draft, or the first step that fails."""
        cleaned: dict[str, Any] = {}
        rules = []
        for step in self.steps[:-1]:
            form = self.form(step)
            if step == "rules" and not form.is_bound:
                form = RuleFormSet(self._data(step), prefix="rules")
            if not form.is_bound or not form.is_valid():
                self.mark(step, False)
                return None, step
            if isinstance(form, BaseRuleFormSet):
                rules = form.specs()
            elif isinstance(form, Form):
                cleaned.update(form.cleaned_data)
        draft = ProfileDraft(
            platform=self.platform,
            name=cleaned["name"],
            description=cleaned.get("description", ""),
            intended_purpose=cleaned["intended_purpose"],
            key_storage_provider=cleaned.get("key_storage_provider", ""),
            certificate_access=cleaned.get("certificate_access", ""),
            silent_access_packages=tuple(cleaned.get("silent_access_packages") or ()),
            scope_tags=tuple(cleaned.get("scope_tags") or ()),
            all_users=bool(cleaned.get("all_users")),
            all_devices=bool(cleaned.get("all_devices")),
            include_groups=tuple(cleaned.get("include_groups") or ()),
            exclude_groups=tuple(cleaned.get("exclude_groups") or ()),
            rules=tuple(rules),
        )
        return draft, None


def draft_spec(draft: ProfileDraft) -> TargetSpec:
    """The targeting of a profile not saved yet, for the review step's preview."""
    return TargetSpec.build(
        platform=draft.platform,
        intended_purpose=draft.intended_purpose,
        settings_key=(
            draft.key_storage_provider if draft.platform == Platform.WINDOWS else "",
            draft.certificate_access if draft.platform == Platform.ANDROID_FULLY_MANAGED else "",
            tuple(sorted(draft.silent_access_packages)),
        ),
        all_users=draft.all_users,
        all_devices=draft.all_devices,
        groups={g.pk: GroupRef.of(g) for g in (*draft.include_groups, *draft.exclude_groups)},
        include_group_ids=[g.pk for g in draft.include_groups],
        exclude_group_ids=[g.pk for g in draft.exclude_groups],
        rules=draft.rules,
    )
