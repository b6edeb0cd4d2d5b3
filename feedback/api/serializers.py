"""Shapes of the feedback API: input serializers check shape only, the rules live in
feedback.services."""

from __future__ import annotations

from rest_framework import serializers

from feedback.models import (
    ComplaintCategory,
    ComplaintChannel,
    ComplaintEvent,
    ComplaintSeverity,
    QuestionKind,
)


class ComplaintEventSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=ComplaintEvent.Action.choices)
    at = serializers.DateTimeField()
    note = serializers.CharField()
    by = serializers.CharField(source="by.username", allow_null=True, default=None)


class ComplaintSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reference = serializers.CharField()
    client_no = serializers.CharField(source="client.client_no")
    branch = serializers.CharField(source="client.branch.code")
    account_manager = serializers.CharField(source="client.account_manager.employee_no", allow_null=True, default=None)
    channel = serializers.ChoiceField(choices=ComplaintChannel.choices)
    category = serializers.ChoiceField(choices=ComplaintCategory.choices)
    severity = serializers.ChoiceField(choices=ComplaintSeverity.choices)
    description = serializers.CharField()
    status = serializers.CharField(help_text="open, in_progress or resolved.")
    opened_at = serializers.DateTimeField()
    first_response_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    first_response_due_at = serializers.DateTimeField()
    resolution_due_at = serializers.DateTimeField()
    first_response_breached = serializers.BooleanField(
        help_text="Responded after the due time, or not yet responded and the due time has passed."
    )
    resolution_breached = serializers.BooleanField(
        help_text="Resolved after the due time, or not yet resolved and the due time has passed."
    )
    escalated_at = serializers.DateTimeField(allow_null=True)
    escalation_reason = serializers.CharField()
    root_cause = serializers.CharField()
    resolution = serializers.CharField()


class ComplaintDetailSerializer(ComplaintSerializer):
    events = ComplaintEventSerializer(many=True, source="events.all")


class ComplaintCreateSerializer(serializers.Serializer):
    client_no = serializers.CharField(max_length=32)
    channel = serializers.ChoiceField(choices=ComplaintChannel.choices)
    category = serializers.ChoiceField(choices=ComplaintCategory.choices)
    severity = serializers.ChoiceField(choices=ComplaintSeverity.choices)
    description = serializers.CharField(max_length=10_000)
    opened_at = serializers.DateTimeField(required=False, help_text="Default: now. Not in the future.")


class ComplaintRespondSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=5000, required=False, default="", allow_blank=True)
    at = serializers.DateTimeField(required=False, help_text="Default: now.")


class ComplaintEscalateSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=5000)
    at = serializers.DateTimeField(required=False, help_text="Default: now.")


class ComplaintResolveSerializer(serializers.Serializer):
    root_cause = serializers.CharField(max_length=5000)
    resolution = serializers.CharField(max_length=5000)
    at = serializers.DateTimeField(required=False, help_text="Default: now.")


class SurveyQuestionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=QuestionKind.choices)
    text = serializers.CharField()


class SurveyResponseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    client_no = serializers.CharField(source="client.client_no")
    question = serializers.IntegerField(source="question_id")
    campaign = serializers.IntegerField(source="campaign_id", allow_null=True)
    kind = serializers.ChoiceField(choices=QuestionKind.choices)
    score = serializers.IntegerField()
    comment = serializers.CharField()
    answered_at = serializers.DateTimeField()
    source = serializers.CharField()
    recorded_by = serializers.CharField(source="recorded_by.username", allow_null=True, default=None)


class SurveyResponseCreateSerializer(serializers.Serializer):
    client_no = serializers.CharField(max_length=32)
    question = serializers.IntegerField(min_value=1, help_text="Id of an active survey question.")
    score = serializers.IntegerField(help_text="CSAT 1-5, NPS 0-10.")
    comment = serializers.CharField(max_length=5000, required=False, default="", allow_blank=True)
    answered_at = serializers.DateTimeField(required=False, help_text="Default: now. Not in the future.")
    campaign = serializers.IntegerField(min_value=1, required=False, help_text="The campaign that asked, if any.")
