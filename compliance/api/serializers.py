"""Serializers of the compliance API: output shapes, and input shapes checked field by field
(the services check the rules)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clients.models import mask_identifier
from compliance.models import (
    SEVERITY_CODES,
    SEVERITY_NAMES,
    AuditEntry,
    Decision,
    Flag,
    FlagDecision,
    ScreeningMatch,
    SuitabilityRecord,
    WatchList,
)
from compliance.models import FlagKind as Kind

RESTRICTED_FIELDS = ("subject", "evidence", "events", "assigned_to")


class FlagSerializer(serializers.ModelSerializer):
    """A flag. `subject`, `evidence`, `events` and `assigned_to` are null for account managers
    and team leads (they see that a flag exists, not its details)."""

    client_no = serializers.CharField(source="client.client_no")
    client_name = serializers.CharField(source="client.name")
    branch = serializers.CharField(source="client.branch.code")
    severity = serializers.SerializerMethodField()
    assigned_to = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    pending_approval = serializers.BooleanField(read_only=True, help_text="A decision waits for a second officer.")
    subject = serializers.CharField(allow_null=True)
    evidence = serializers.JSONField(allow_null=True)
    events = serializers.IntegerField(allow_null=True)

    class Meta:
        model = Flag
        fields = [
            "id",
            "client_no",
            "client_name",
            "branch",
            "kind",
            "subject",
            "severity",
            "status",
            "pending_approval",
            "evidence",
            "events",
            "first_seen_on",
            "last_seen_on",
            "raised_at",
            "assigned_to",
            "closed_at",
        ]

    @extend_schema_field({"type": "string", "enum": list(SEVERITY_CODES)})
    def get_severity(self, flag: Flag) -> str:
        return SEVERITY_NAMES[flag.severity]

    def to_representation(self, instance: Flag) -> dict[str, Any]:
        data = super().to_representation(instance)
        if not self.context.get("full"):
            for name in RESTRICTED_FIELDS:
                data[name] = None
        return data


class FlagDecisionSerializer(serializers.ModelSerializer):
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    reviewed_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = FlagDecision
        fields = [
            "id",
            "decision",
            "note",
            "whitelist",
            "status",
            "decided_by",
            "decided_at",
            "reviewed_by",
            "reviewed_at",
            "review_note",
        ]


class FlagDetailSerializer(FlagSerializer):
    """A flag with its decisions (officers and API systems) and the client's ID number:
    unmasked for compliance officers (each view audited), masked for everyone else."""

    id_number = serializers.SerializerMethodField(help_text="Unmasked for compliance officers only.")
    decisions = serializers.SerializerMethodField()

    class Meta(FlagSerializer.Meta):
        fields = [*FlagSerializer.Meta.fields, "id_number", "decisions"]

    @extend_schema_field(OpenApiTypes.STR)
    def get_id_number(self, flag: Flag) -> str:
        kyc = getattr(flag.client, "kyc", None)
        if kyc is None:
            return ""
        return kyc.id_number if self.context.get("unmasked") else mask_identifier(kyc.id_number)

    @extend_schema_field(FlagDecisionSerializer(many=True, allow_null=True))
    def get_decisions(self, flag: Flag) -> list[dict[str, Any]] | None:
        if not self.context.get("full"):
            return None
        return FlagDecisionSerializer(self.context.get("decisions", []), many=True).data


class TakeNextSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Kind.choices, required=False)
    severity = serializers.ChoiceField(choices=list(SEVERITY_CODES), required=False)
    branch = serializers.CharField(max_length=16, required=False, help_text="Branch code.")


class DecideSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=Decision.choices)
    note = serializers.CharField(max_length=4000, help_text="Mandatory: why.")
    whitelist = serializers.BooleanField(
        default=False, help_text="With clear, on a watch-list match: record it as a confirmed false match."
    )


class ApproveSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=4000, required=False, allow_blank=True)


class RejectSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=4000, help_text="Mandatory: why the decision is rejected.")


class DecisionResultSerializer(serializers.Serializer):
    applied = serializers.BooleanField(help_text="False: the decision waits for a second officer (four eyes).")
    decision = FlagDecisionSerializer()
    flag = FlagSerializer()


class ScreeningMatchSerializer(serializers.ModelSerializer):
    client_no = serializers.CharField(source="client.client_no")
    watch_list = serializers.CharField(source="entry.watch_list.name")
    entry_external_id = serializers.CharField(source="entry.external_id")
    entry_name = serializers.CharField(source="entry.name")

    class Meta:
        model = ScreeningMatch
        fields = [
            "id",
            "client_no",
            "client_name",
            "watch_list",
            "entry_external_id",
            "entry_name",
            "matched_name",
            "score",
            "name_score",
            "matched_fields",
            "screened_at",
        ]


class WatchListSerializer(serializers.ModelSerializer):
    class Meta:
        model = WatchList
        fields = ["id", "name", "kind", "source", "loaded_at", "loaded_by", "file_sha256", "version"]


class SuitabilityRecordSerializer(serializers.ModelSerializer):
    client_no = serializers.CharField(source="client.client_no")
    instrument = serializers.CharField(source="instrument.symbol")
    recorded_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = SuitabilityRecord
        fields = [
            "id",
            "kind",
            "client_no",
            "instrument",
            "client_risk_level",
            "product_risk_level",
            "mismatch",
            "warning_text",
            "acknowledged_at",
            "acknowledgement_method",
            "reference",
            "recorded_by",
            "recorded_at",
        ]


class SuitabilityCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=SuitabilityRecord.Kind.choices)
    client_no = serializers.CharField(max_length=32)
    instrument = serializers.CharField(max_length=24, help_text="Instrument symbol, e.g. 600519.SH.")
    warning_text = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="")
    acknowledged_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    acknowledgement_method = serializers.ChoiceField(
        choices=SuitabilityRecord.Method.choices, required=False, allow_blank=True, default=""
    )
    reference = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")


class SuitabilityCheckSerializer(serializers.Serializer):
    client_no = serializers.CharField()
    instrument = serializers.CharField()
    client_risk_level = serializers.IntegerField(allow_null=True)
    product_risk_level = serializers.IntegerField()
    mismatch = serializers.BooleanField(help_text="The product is above the client's level: warning and ack needed.")
    allowed = serializers.BooleanField(help_text="False: refused whatever is acknowledged.")
    reason = serializers.CharField()


class AuditEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEntry
        fields = [
            "seq",
            "at",
            "actor_name",
            "action",
            "object_type",
            "object_id",
            "client_no",
            "old",
            "new",
            "note",
            "prev_hash",
            "hash",
        ]
