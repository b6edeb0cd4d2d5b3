"""Admin of retention work (registered from retention/admin.py).

- Playbooks, the service catalogue and the tier matrix are edited by ops here.
- Tasks, callbacks, entitlements and deliveries belong to clients: they go through the one
  permission policy (ScopedAdmin), and are written by the services (open, complete, cancel,
  record an attempt), so here only a task's schedule, priority, assignee and notes change.
- Callback records cannot be deleted before their retention date.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from brokercrm.admin import ReadOnlyAdminMixin, ScopedAdmin
from brokercrm.policy import visible_clients
from retention.services import task_update
from retention.work.models import (
    Callback,
    CallbackAttempt,
    CallbackSample,
    Campaign,
    ClientEntitlement,
    Playbook,
    RetentionTask,
    ServiceDelivery,
    ServiceProduct,
    TierEntitlement,
)
from retention.work.playbooks import PlaybookError, playbook_validate
from segmentation.models import Tier


class RetentionTaskForm(forms.ModelForm):
    """Only the schedule, priority, assignee and notes of an open task change here; the new
    assignee must be someone who may see the client (the same rule as the API)."""

    class Meta:
        model = RetentionTask
        fields = ("due", "priority", "assignee", "notes")

    def clean_assignee(self) -> object:
        assignee = self.cleaned_data.get("assignee")
        if assignee is not None and not visible_clients(assignee).filter(pk=self.instance.client_id).exists():
            raise ValidationError(f"{assignee.get_username()} may not see this client.")
        return assignee


@admin.register(RetentionTask)
class RetentionTaskAdmin(ScopedAdmin):
    form = RetentionTaskForm
    list_display = ("id", "client", "kind", "status", "due", "priority", "assignee", "source", "reason_code")
    list_filter = ("status", "kind", "source", "playbook")
    list_select_related = ("client", "assignee")
    search_fields = ("client__client_no", "reason_code")
    date_hierarchy = "due"
    show_full_result_count = False
    raw_id_fields = ("client", "assignee")
    fields = (
        "client",
        "kind",
        "status",
        "due",
        "priority",
        "assignee",
        "notes",
        "source",
        "reason_code",
        "reason_text",
        "playbook",
        "campaign",
        "dedupe_key",
        "created_on",
        "created_by",
        "channel",
        "outcome",
        "closed_at",
        "closed_by",
        "close_reason",
        "interaction",
    )
    editable_fields = ("due", "priority", "assignee", "notes")

    def get_readonly_fields(self, request: HttpRequest, obj: RetentionTask | None = None) -> list[str]:
        if obj is not None and obj.status == "open":
            return [name for name in self.fields if name not in self.editable_fields]
        return list(self.fields)

    def save_model(self, request: HttpRequest, obj: RetentionTask, form: forms.ModelForm, change: bool) -> None:
        # Through the service: a compare-and-set on the open status, like the API.
        fields = {name: form.cleaned_data[name] for name in form.changed_data if name in self.editable_fields}
        if fields:
            task_update(task=RetentionTask.objects.get(pk=obj.pk), by=request.user, **fields)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # opened by playbooks, callbacks, services and the API (retention.services.open_task)

    def has_delete_permission(self, request: HttpRequest, obj: RetentionTask | None = None) -> bool:
        return False  # closed with a status and a reason, never deleted


class ChoiceListField(forms.MultipleChoiceField):
    """A JSON list field edited as checkboxes."""

    widget = forms.CheckboxSelectMultiple


class PlaybookForm(forms.ModelForm):
    tiers = forms.TypedMultipleChoiceField(
        choices=Tier.choices,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Effective tier of the client; none ticked = any tier.",
    )
    segments = ChoiceListField(choices=(), required=False, help_text="Activity segment; none ticked = any.")

    class Meta:
        model = Playbook
        fields = (
            "name",
            "description",
            "is_active",
            "tiers",
            "min_churn_risk",
            "segments",
            "about_to_go_dormant",
            "high_assets_low_activity",
            "tier_change",
            "tier_change_within_days",
            "task_kind",
            "due_in_days",
            "priority",
            "assignee_role",
            "reason_text",
            "cooldown_days",
        )

    def __init__(self, *args: object, **kwargs: object) -> None:
        from retention.models import ActivitySegment

        super().__init__(*args, **kwargs)
        self.fields["segments"].choices = ActivitySegment.choices

    def clean(self) -> dict:
        cleaned = super().clean()
        candidate = Playbook(tiers=cleaned.get("tiers") or [], segments=cleaned.get("segments") or [])
        try:
            playbook_validate(candidate)
        except PlaybookError as exc:
            raise ValidationError(str(exc)) from exc
        if not any(
            [
                cleaned.get("tiers"),
                cleaned.get("min_churn_risk") is not None,
                cleaned.get("segments"),
                cleaned.get("about_to_go_dormant") is not None,
                cleaned.get("high_assets_low_activity") is not None,
                cleaned.get("tier_change"),
            ]
        ):
            raise ValidationError("Set at least one condition: a playbook without one would match every client.")
        return cleaned


@admin.register(Playbook)
class PlaybookAdmin(admin.ModelAdmin):
    form = PlaybookForm
    list_display = ("name", "is_active", "task_kind", "min_churn_risk", "tier_change", "due_in_days", "priority")
    list_filter = ("is_active", "task_kind")
    search_fields = ("name",)
    fieldsets = (
        (None, {"fields": ("name", "description", "is_active")}),
        (
            "When (every condition set must hold)",
            {
                "fields": (
                    "tiers",
                    "min_churn_risk",
                    "segments",
                    "about_to_go_dormant",
                    "high_assets_low_activity",
                    "tier_change",
                    "tier_change_within_days",
                )
            },
        ),
        (
            "Then open a task",
            {"fields": ("task_kind", "due_in_days", "priority", "assignee_role", "reason_text", "cooldown_days")},
        ),
    )

    def has_delete_permission(self, request: HttpRequest, obj: Playbook | None = None) -> bool:
        return False  # switch it off instead: its tasks point at it


class CallbackAttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = CallbackAttempt
    extra = 0
    fields = ("number", "result", "by", "at", "notes")
    readonly_fields = fields


@admin.register(Callback)
class CallbackAdmin(ReadOnlyAdminMixin, ScopedAdmin):
    list_display = ("client", "kind", "year", "due", "status", "attempts", "satisfaction", "retain_until")
    list_filter = ("kind", "status", "year")
    list_select_related = ("client",)
    search_fields = ("client__client_no",)
    show_full_result_count = False
    inlines = (CallbackAttemptInline,)


@admin.register(CallbackSample)
class CallbackSampleAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("year", "seed", "percent", "population", "sample_size", "drawn_on", "drawn_by")


class TierEntitlementInline(admin.TabularInline):
    model = TierEntitlement
    extra = 0


@admin.register(ServiceProduct)
class ServiceProductAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "channel", "frequency", "needs_person", "is_active", "tiers")
    list_filter = ("channel", "frequency", "is_active")
    inlines = (TierEntitlementInline,)

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).prefetch_related("tier_entitlements")

    @admin.display(description="tiers")
    def tiers(self, obj: ServiceProduct) -> str:
        return ", ".join(Tier(cell.tier).label for cell in sorted(obj.tier_entitlements.all(), key=lambda c: c.tier))

    def has_delete_permission(self, request: HttpRequest, obj: ServiceProduct | None = None) -> bool:
        return False  # switch it off instead: entitlements and deliveries point at it


@admin.register(ClientEntitlement)
class ClientEntitlementAdmin(ReadOnlyAdminMixin, ScopedAdmin):
    list_display = ("client", "product", "granted_on", "granted_tier", "next_due", "withdrawn_on", "withdrawn_reason")
    list_filter = ("product", ("withdrawn_on", admin.EmptyFieldListFilter))
    list_select_related = ("client", "product")
    search_fields = ("client__client_no",)
    show_full_result_count = False


@admin.register(ServiceDelivery)
class ServiceDeliveryAdmin(ReadOnlyAdminMixin, ScopedAdmin):
    list_display = ("delivered_on", "client", "product", "channel", "by", "scheduled_for")
    list_filter = ("product", "channel")
    list_select_related = ("client", "product", "by")
    search_fields = ("client__client_no",)
    show_full_result_count = False


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Campaigns are created, launched and measured through the API (retention.work.campaigns)."""

    list_display = ("name", "status", "control_percent", "launched_on", "outcome", "outcome_days", "uplift")

    @admin.display(description="uplift (95% CI)")
    def uplift(self, obj: Campaign) -> str:
        report = obj.report or {}
        if report.get("uplift") is None:
            return ""
        return f"{report['uplift']:+.3f} [{report['ci_low']:+.3f}, {report['ci_high']:+.3f}]"
