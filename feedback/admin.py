"""Admin for feedback: questions and campaigns (ops), complaints and answers through the
permission policy. Complaints are never deleted here (the regulator wants them kept at
least 3 years); a ticket is opened through feedback.services (which stamps its SLA due
times) and moved on through the API; answers are view-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from brokercrm.admin import ReadOnlyAdminMixin, ScopedAdmin
from feedback import services
from feedback.models import Complaint, ComplaintEvent, SurveyCampaign, SurveyQuestion, SurveyResponse


@admin.register(SurveyQuestion)
class SurveyQuestionAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "text", "is_active", "created_at")
    list_filter = ("kind", "is_active")

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(SurveyCampaign)
class SurveyCampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "question", "tier", "branch", "account_manager", "status", "sent_at", "invited")
    list_filter = ("status", "tier")
    list_select_related = ("question", "branch", "account_manager__user")
    readonly_fields = ("status", "sent_at", "invited", "created_by", "created_at")
    actions = ("send",)

    def save_model(self, request: HttpRequest, obj: SurveyCampaign, form: forms.ModelForm, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return obj is None or obj.status == SurveyCampaign.Status.DRAFT

    @admin.action(description="Send the selected draft campaigns to their segment")
    def send(self, request: HttpRequest, queryset: QuerySet[SurveyCampaign]) -> None:
        for campaign in queryset.filter(status=SurveyCampaign.Status.DRAFT):
            invited = services.survey_campaign_send(campaign=campaign, by=request.user)
            self.message_user(request, f"{campaign}: {invited} clients invited.", messages.SUCCESS)


@admin.register(SurveyResponse)
class SurveyResponseAdmin(ReadOnlyAdminMixin, ScopedAdmin):
    list_display = ("answered_at", "client", "kind", "score", "source", "campaign", "recorded_by")
    list_filter = ("kind", "source", "score")
    list_select_related = ("client", "campaign", "recorded_by")
    search_fields = ("client__client_no",)
    date_hierarchy = "answered_at"
    show_full_result_count = False


class ComplaintEventInline(admin.TabularInline):
    model = ComplaintEvent
    fields = ("at", "action", "by", "note")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ComplaintAddForm(forms.ModelForm):
    class Meta:
        model = Complaint
        fields = ("client", "channel", "category", "severity", "description", "opened_at")


class BreachFilter(admin.SimpleListFilter):
    title = "SLA breached (as of now)"
    parameter_name = "breached"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("any", "Any breach"), ("first_response", "First response"), ("resolution", "Resolution")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in ("any", "first_response", "resolution"):
            return queryset.breached(timezone.now(), self.value())
        return queryset


@admin.register(Complaint)
class ComplaintAdmin(ScopedAdmin):
    list_display = (
        "reference",
        "client",
        "severity",
        "category",
        "status",
        "opened_at",
        "first_response_at",
        "resolved_at",
        "breach",
        "escalated_at",
    )
    list_filter = ("status", "severity", "category", "channel", BreachFilter)
    list_select_related = ("client",)
    search_fields = ("client__client_no",)
    date_hierarchy = "opened_at"
    raw_id_fields = ("client",)
    inlines = (ComplaintEventInline,)
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).with_sla(timezone.now())

    def get_form(self, request: HttpRequest, obj: Complaint | None = None, **kwargs: Any) -> type[forms.ModelForm]:
        if obj is None:
            kwargs["form"] = ComplaintAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Complaint | None = None) -> list[str]:
        if obj is None:
            return list(ComplaintAddForm.Meta.fields)
        return [field.name for field in Complaint._meta.concrete_fields if field.name != "id"]

    def get_readonly_fields(self, request: HttpRequest, obj: Complaint | None = None) -> list[str]:
        return self.get_fields(request, obj) if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Complaint, form: forms.ModelForm, change: bool) -> None:
        if change:
            return
        data = form.cleaned_data
        opened = services.complaint_open(
            client=data["client"],
            channel=data["channel"],
            category=data["category"],
            severity=data["severity"],
            description=data["description"],
            opened_at=data["opened_at"],
            by=request.user,
        )
        obj.pk = opened.pk

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    @admin.display(description="SLA")
    def breach(self, obj: Complaint) -> str:
        flags = [
            name
            for name, flag in (("response", obj.first_response_breached), ("resolution", obj.resolution_breached))
            if flag
        ]
        return "breached: " + ", ".join(flags) if flags else "ok"
