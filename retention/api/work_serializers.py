"""Shapes of the retention-work API (tasks, playbooks, callbacks, entitlements, campaigns).

Shape only: the rules live in retention.services and retention.work.*."""

from __future__ import annotations

from rest_framework import serializers

from clients.models import Interaction
from retention.work.models import (
    CallbackResult,
    CampaignOutcome,
    TaskKind,
    TaskSource,
    TaskStatus,
)
from segmentation.api.serializers import TierCodeField


class TaskSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    client_no = serializers.CharField(source="client.client_no")
    client_name = serializers.CharField(source="client.name")
    account_manager = serializers.CharField(source="client.account_manager.employee_no", allow_null=True, default=None)
    kind = serializers.ChoiceField(choices=TaskKind.choices)
    status = serializers.ChoiceField(choices=TaskStatus.choices)
    due = serializers.DateField()
    priority = serializers.IntegerField()
    assignee = serializers.CharField(source="assignee.username", allow_null=True, default=None)
    source = serializers.ChoiceField(choices=TaskSource.choices, help_text="What created the task.")
    reason_code = serializers.CharField()
    reason_text = serializers.CharField(help_text="The reason in the site's default language.")
    reason_facts = serializers.JSONField(
        help_text="What the system wrote the reason from: {message: playbook | callback | callback_finding | "
        "campaign | service | nps_detractor, ...its fields}; {} for a task opened by hand."
    )
    reason_display = serializers.CharField(help_text="The reason in the request's language (Accept-Language).")
    playbook = serializers.CharField(source="playbook.name", allow_null=True, default=None)
    campaign = serializers.IntegerField(source="campaign_id", allow_null=True)
    channel = serializers.CharField()
    outcome = serializers.CharField()
    notes = serializers.CharField()
    created_on = serializers.DateField()
    closed_at = serializers.DateTimeField(allow_null=True)
    close_reason = serializers.CharField()
    interaction = serializers.IntegerField(
        source="interaction_id", allow_null=True, help_text="The interaction recorded when the task was done."
    )


class TaskWorkloadSerializer(serializers.Serializer):
    assignee = serializers.CharField(allow_null=True, help_text="Username; null: unassigned.")
    kind = serializers.CharField()
    tasks = serializers.IntegerField(help_text="Open tasks.")
    overdue = serializers.IntegerField(help_text="Of which due before today.")


class TaskCreateSerializer(serializers.Serializer):
    client_no = serializers.CharField(max_length=32)
    kind = serializers.ChoiceField(choices=TaskKind.choices)
    reason_text = serializers.CharField(max_length=2000)
    due = serializers.DateField()
    priority = serializers.IntegerField(min_value=0, max_value=100, default=50)
    assignee = serializers.CharField(
        max_length=150, required=False, help_text="Username; default: the client's account manager."
    )


class TaskUpdateSerializer(serializers.Serializer):
    due = serializers.DateField(required=False)
    priority = serializers.IntegerField(min_value=0, max_value=100, required=False)
    assignee = serializers.CharField(max_length=150, required=False, help_text="Username of the new assignee.")
    notes = serializers.CharField(max_length=5000, required=False, allow_blank=True)


class TaskCompleteSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Interaction.Channel.choices)
    outcome = serializers.CharField(max_length=200)
    notes = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")
    occurred_at = serializers.DateTimeField(required=False, help_text="When the contact happened; default: now.")


class TaskCancelSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300)


class PlaybookSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    is_active = serializers.BooleanField()
    tiers = serializers.ListField(child=TierCodeField())
    min_churn_risk = serializers.IntegerField(allow_null=True)
    segments = serializers.ListField(child=serializers.CharField())
    about_to_go_dormant = serializers.BooleanField(allow_null=True)
    high_assets_low_activity = serializers.BooleanField(allow_null=True)
    tier_change = serializers.CharField()
    tier_change_within_days = serializers.IntegerField()
    task_kind = serializers.CharField()
    due_in_days = serializers.IntegerField()
    priority = serializers.IntegerField()
    assignee_role = serializers.CharField()
    reason_text = serializers.CharField()
    cooldown_days = serializers.IntegerField()
    open_tasks = serializers.IntegerField(help_text="Open tasks of this playbook (firm-wide).")


class CallbackSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    client_no = serializers.CharField(source="client.client_no")
    client_name = serializers.CharField(source="client.name")
    account_manager = serializers.CharField(source="client.account_manager.employee_no", allow_null=True, default=None)
    kind = serializers.CharField()
    year = serializers.IntegerField()
    due = serializers.DateField()
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    assignee = serializers.CharField(source="task.assignee.username", allow_null=True, default=None)
    identity_confirmed = serializers.BooleanField(allow_null=True)
    no_unauthorised_staff_trading = serializers.BooleanField(allow_null=True)
    risk_disclosure_understood = serializers.BooleanField(allow_null=True)
    satisfaction = serializers.IntegerField(allow_null=True)
    notes = serializers.CharField()
    completed_at = serializers.DateTimeField(allow_null=True)
    completed_by = serializers.CharField(source="completed_by.username", allow_null=True, default=None)
    escalated_at = serializers.DateTimeField(allow_null=True)
    retain_until = serializers.DateField()


class CallbackAttemptInputSerializer(serializers.Serializer):
    result = serializers.ChoiceField(choices=CallbackResult.choices)
    channel = serializers.ChoiceField(choices=Interaction.Channel.choices, default=Interaction.Channel.PHONE)
    identity_confirmed = serializers.BooleanField(required=False, allow_null=True, default=None)
    no_unauthorised_staff_trading = serializers.BooleanField(required=False, allow_null=True, default=None)
    risk_disclosure_understood = serializers.BooleanField(required=False, allow_null=True, default=None)
    satisfaction = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True, default=None)
    notes = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")


class CallbackSampleInputSerializer(serializers.Serializer):
    year = serializers.IntegerField(min_value=2000, max_value=2100)
    seed = serializers.IntegerField(min_value=0, max_value=2**62)


class CallbackSampleSerializer(serializers.Serializer):
    year = serializers.IntegerField()
    seed = serializers.IntegerField()
    percent = serializers.IntegerField()
    population = serializers.IntegerField()
    sample_size = serializers.IntegerField()
    drawn_on = serializers.DateField()


class CallbackProgressPartSerializer(serializers.Serializer):
    quota = serializers.IntegerField(help_text="Callbacks required.")
    done = serializers.IntegerField()
    pending = serializers.IntegerField()
    retry = serializers.IntegerField()
    escalated = serializers.IntegerField()
    overdue = serializers.IntegerField(help_text="Not done and past due.")
    done_share = serializers.FloatField(allow_null=True, help_text="done / quota (null when the quota is 0).")


class CallbackProgressSerializer(serializers.Serializer):
    year = serializers.IntegerField()
    as_of = serializers.DateField()
    sample = CallbackSampleSerializer(allow_null=True)
    annual_sample = CallbackProgressPartSerializer()
    new_account = CallbackProgressPartSerializer()


class ServiceProductSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    channel = serializers.CharField()
    frequency = serializers.CharField()
    needs_person = serializers.BooleanField()
    task_kind = serializers.CharField()
    is_active = serializers.BooleanField()
    tiers = serializers.ListField(child=TierCodeField(), help_text="Tiers entitled to the product.")


class EntitlementSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    client_no = serializers.CharField(source="client.client_no")
    product = serializers.CharField(source="product.code")
    product_name = serializers.CharField(source="product.name")
    granted_on = serializers.DateField()
    granted_tier = TierCodeField()
    next_due = serializers.DateField(allow_null=True)
    withdrawn_on = serializers.DateField(allow_null=True)
    withdrawn_reason = serializers.CharField()


class DeliveryInputSerializer(serializers.Serializer):
    delivered_on = serializers.DateField(required=False, help_text="Default: today.")
    notes = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")


class DeliverySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    product = serializers.CharField(source="product_id")
    scheduled_for = serializers.DateField(allow_null=True)
    delivered_on = serializers.DateField()
    channel = serializers.CharField()
    by = serializers.CharField(source="by.username", allow_null=True, default=None)
    notes = serializers.CharField()


class CampaignInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")
    segment = serializers.DictField(
        help_text="Keys: tiers (codes), segments, min_churn_risk, max_churn_risk, managers (employee numbers), "
        "branches (codes), preferences ({dimension: category}). Empty: every open client."
    )
    control_percent = serializers.IntegerField(min_value=1, max_value=90, required=False)
    seed = serializers.IntegerField(min_value=0, max_value=2**62, required=False)
    task_kind = serializers.ChoiceField(choices=TaskKind.choices, default=TaskKind.OTHER)
    task_reason = serializers.CharField(max_length=300)
    due_in_days = serializers.IntegerField(min_value=0, max_value=365, default=7)
    priority = serializers.IntegerField(min_value=0, max_value=100, default=50)
    outcome = serializers.ChoiceField(choices=CampaignOutcome.choices, default=CampaignOutcome.TRADED)
    outcome_days = serializers.IntegerField(min_value=1, max_value=365, default=30)


class CampaignSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    segment = serializers.JSONField()
    control_percent = serializers.IntegerField()
    seed = serializers.IntegerField()
    task_kind = serializers.CharField()
    task_reason = serializers.CharField()
    due_in_days = serializers.IntegerField()
    priority = serializers.IntegerField()
    outcome = serializers.CharField()
    outcome_days = serializers.IntegerField()
    status = serializers.CharField()
    launched_on = serializers.DateField(allow_null=True)
    report = serializers.JSONField(help_text="Treated and control: n, converted, rate; uplift with its 95% CI.")
    measured_at = serializers.DateTimeField(allow_null=True)
    created_by = serializers.CharField(source="created_by.username")
