"""Forms of the account manager's pages (home and client 360). They check shape only; the
services (clients.services, retention.services, retention.work.callbacks, feedback.services)
check the business rules and do the writes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clients.models import Interaction
from clients.services import OUTCOME_MAX, SUMMARY_MAX
from feedback.models import ComplaintCategory, ComplaintChannel, ComplaintSeverity
from retention.work.models import CallbackResult, TaskKind

YES_NO = [("", _("Choose…")), ("yes", _("Yes")), ("no", _("No"))]
SATISFACTION = [("", _("Choose…")), *[(str(n), str(n)) for n in range(1, 6)]]


def _blank_first(choices: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return [("", _("Choose…")), *choices]


class WorkspaceForm(forms.Form):
    """A form whose fields in error point at their message (aria-invalid, aria-describedby), and
    whose ids are prefixed so several forms can share a page."""

    def mark_errors(self) -> WorkspaceForm:
        for name in self.errors:
            if name in self.fields:
                bound = self[name]
                self.fields[name].widget.attrs.update(
                    {"aria-invalid": "true", "aria-describedby": f"{bound.auto_id}_error"}
                )
        return self

    def service_error(self, message: str, field: str | None = None) -> None:
        """Attach a service's refusal to its field (when the form has it) or to the form."""
        self.add_error(field if field in self.fields else None, message)
        self.mark_errors()


class InteractionForm(WorkspaceForm):
    channel = forms.ChoiceField(label=_("Channel"), choices=Interaction.Channel.choices)
    direction = forms.ChoiceField(label=_("Direction"), choices=Interaction.Direction.choices)
    summary = forms.CharField(label=_("Summary"), max_length=SUMMARY_MAX, widget=forms.Textarea(attrs={"rows": 3}))
    outcome = forms.CharField(label=_("Outcome"), max_length=OUTCOME_MAX, required=False)


class TaskForm(WorkspaceForm):
    kind = forms.ChoiceField(
        label=_("Kind"), choices=_blank_first([c for c in TaskKind.choices if c[0] != TaskKind.CALLBACK])
    )
    due = forms.DateField(label=_("Due"), widget=forms.DateInput(attrs={"type": "date"}))
    priority = forms.IntegerField(label=_("Priority (0-100)"), min_value=0, max_value=100, initial=50)
    note = forms.CharField(
        label=_("Note: why and what to do"), max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )

    def clean_due(self) -> dt.date:
        due = self.cleaned_data["due"]
        if due < timezone.localdate():
            raise forms.ValidationError(_("The due date cannot be in the past."))
        return due


class TaskDoneForm(WorkspaceForm):
    channel = forms.ChoiceField(label=_("Channel"), choices=Interaction.Channel.choices)
    outcome = forms.CharField(label=_("Outcome"), max_length=OUTCOME_MAX)
    notes = forms.CharField(label=_("Note"), required=False, max_length=2000)


class TaskRescheduleForm(WorkspaceForm):
    due = forms.DateField(label=_("New due date"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean_due(self) -> dt.date:
        due = self.cleaned_data["due"]
        if due < timezone.localdate():
            raise forms.ValidationError(_("The due date cannot be in the past."))
        return due


class TaskCancelForm(WorkspaceForm):
    reason = forms.CharField(label=_("Why cancel"), max_length=300)


def _yes_no(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


class CallbackForm(WorkspaceForm):
    result = forms.ChoiceField(label=_("Result"), choices=CallbackResult.choices, initial=CallbackResult.COMPLETED)
    channel = forms.ChoiceField(label=_("Channel"), choices=Interaction.Channel.choices, initial="phone")
    identity_confirmed = forms.ChoiceField(label=_("Identity confirmed"), choices=YES_NO, required=False)
    no_unauthorised_staff_trading = forms.ChoiceField(
        label=_("No unauthorised trading by staff"), choices=YES_NO, required=False
    )
    risk_disclosure_understood = forms.ChoiceField(
        label=_("Risk disclosure understood"), choices=YES_NO, required=False
    )
    satisfaction = forms.ChoiceField(label=_("Satisfaction (1-5)"), choices=SATISFACTION, required=False)
    notes = forms.CharField(label=_("Note"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))

    CHECKLIST = ("identity_confirmed", "no_unauthorised_staff_trading", "risk_disclosure_understood", "satisfaction")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("result") == CallbackResult.COMPLETED:
            for name in self.CHECKLIST:
                if not data.get(name):
                    self.add_error(name, _("Answer this item: a completed callback needs the whole checklist."))
        return data

    def service_arguments(self) -> dict[str, Any]:
        data = self.cleaned_data
        completed = data["result"] == CallbackResult.COMPLETED
        return {
            "result": data["result"],
            "channel": data["channel"],
            "identity_confirmed": _yes_no(data["identity_confirmed"]) if completed else None,
            "no_unauthorised_staff_trading": _yes_no(data["no_unauthorised_staff_trading"]) if completed else None,
            "risk_disclosure_understood": _yes_no(data["risk_disclosure_understood"]) if completed else None,
            "satisfaction": int(data["satisfaction"]) if completed and data["satisfaction"] else None,
            "notes": data["notes"].strip(),
        }


class ComplaintForm(WorkspaceForm):
    channel = forms.ChoiceField(label=_("Channel"), choices=ComplaintChannel.choices)
    category = forms.ChoiceField(label=_("Category"), choices=_blank_first(ComplaintCategory.choices))
    severity = forms.ChoiceField(label=_("Severity"), choices=_blank_first(ComplaintSeverity.choices))
    description = forms.CharField(label=_("Description"), max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))
