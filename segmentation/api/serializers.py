"""Output (and override input) shapes of the segmentation API. Shape only: rules live in services."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from segmentation.models import MOVE_NAMES, TIER_BY_CODE, TIER_CODES


def tier_code(value: int | None) -> str | None:
    return TIER_CODES.get(value) if value is not None else None


@extend_schema_field({"type": "string", "nullable": True, "description": "vip, major, ordinary or small"})
class TierCodeField(serializers.Field):
    """A tier as its code ("vip", "major", "ordinary", "small"); null when absent."""

    def to_representation(self, value: int | None) -> str | None:
        return tier_code(value)

    def to_internal_value(self, data: object) -> int:
        if data not in TIER_BY_CODE:
            raise serializers.ValidationError(f"Expected one of {', '.join(TIER_BY_CODE)}.")
        return TIER_BY_CODE[data]


class TierRowSerializer(serializers.Serializer):
    """A client's tier on a date; `tier` is the effective tier (an override in force wins)."""

    client_no = serializers.CharField(source="client.client_no")
    name = serializers.CharField(source="client.name")
    branch = serializers.CharField(source="client.branch.code")
    account_manager = serializers.CharField(source="client.account_manager.employee_no", allow_null=True, default=None)
    as_of = serializers.DateField()
    tier = TierCodeField(source="effective_tier")
    computed_tier = TierCodeField(source="tier")
    override_tier = TierCodeField(allow_null=True)
    override_expires_on = serializers.DateField(allow_null=True)
    value = serializers.DecimalField(max_digits=20, decimal_places=2, help_text="Basis value (commission or assets).")
    rank = serializers.IntegerField()
    percentile = serializers.FloatField(help_text="Percent of clients with a strictly higher value (0 = top).")
    previous_tier = TierCodeField(allow_null=True)
    change = serializers.SerializerMethodField(help_text="up, down, same or new (against the previous run).")

    def get_change(self, row: object) -> str:
        return MOVE_NAMES[row.change]


class TierChangeSerializer(serializers.Serializer):
    as_of = serializers.DateField()
    tier = TierCodeField(allow_null=True, help_text="Null: left the population (closed).")
    previous_tier = TierCodeField(allow_null=True, help_text="Null: entered the population.")
    value = serializers.DecimalField(max_digits=20, decimal_places=2, allow_null=True)
    rank = serializers.IntegerField(allow_null=True)
    percentile = serializers.FloatField(allow_null=True)


class OverrideAuditSerializer(serializers.Serializer):
    action = serializers.CharField()
    tier = TierCodeField()
    computed_tier = TierCodeField(allow_null=True)
    reason = serializers.CharField()
    by = serializers.CharField(source="by.username", allow_null=True, default=None)
    at = serializers.DateTimeField()


class OverrideSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    tier = TierCodeField()
    reason = serializers.CharField()
    starts_on = serializers.DateField()
    expires_on = serializers.DateField()
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    end_reason = serializers.CharField()
    audit = OverrideAuditSerializer(many=True, source="audit.all")


class CurrentTierSerializer(serializers.Serializer):
    as_of = serializers.DateField()
    tier = TierCodeField()
    value = serializers.DecimalField(max_digits=20, decimal_places=2)
    rank = serializers.IntegerField()
    percentile = serializers.FloatField()
    previous_tier = TierCodeField(allow_null=True)
    change = serializers.SerializerMethodField()

    def get_change(self, row: object) -> str:
        return MOVE_NAMES[row.change]


class ClientTierHistorySerializer(serializers.Serializer):
    client_no = serializers.CharField(source="client.client_no")
    as_of = serializers.DateField(allow_null=True, help_text="The current tier date.")
    current = CurrentTierSerializer(allow_null=True, help_text="Computed tier on the current date.")
    changes = TierChangeSerializer(many=True)
    overrides = OverrideSerializer(many=True)


class TierRunSerializer(serializers.Serializer):
    as_of = serializers.DateField()
    basis = serializers.CharField()
    window_start = serializers.DateField(allow_null=True)
    window_end = serializers.DateField(allow_null=True)
    cutoffs = serializers.JSONField()
    population = serializers.IntegerField()
    tier_counts = serializers.JSONField()
    total_commission = serializers.DecimalField(max_digits=24, decimal_places=2)
    top20_share = serializers.FloatField(allow_null=True)
    previous_as_of = serializers.DateField(allow_null=True)
    changes = serializers.IntegerField()
    retained = serializers.BooleanField(help_text="Per-client rows of this date are still stored.")
    published_at = serializers.DateTimeField()


class ParetoStepSerializer(serializers.Serializer):
    tier = serializers.CharField()
    clients = serializers.IntegerField()
    commission = serializers.SerializerMethodField()
    client_share = serializers.FloatField()
    commission_share = serializers.FloatField()
    cumulative_client_share = serializers.FloatField()
    cumulative_commission_share = serializers.FloatField()

    def get_commission(self, step: dict) -> str:
        cents = int(step["commission_cents"])
        return f"{'-' if cents < 0 else ''}{abs(cents) // 100}.{abs(cents) % 100:02d}"


class ParetoSerializer(serializers.Serializer):
    as_of = serializers.DateField()
    basis = serializers.CharField()
    population = serializers.IntegerField()
    total_commission = serializers.DecimalField(max_digits=24, decimal_places=2)
    top20_share = serializers.FloatField(allow_null=True, help_text="Commission share of the top 20% of clients.")
    steps = ParetoStepSerializer(many=True, source="pareto")


class MigrationSerializer(serializers.Serializer):
    from_as_of = serializers.DateField()
    to_as_of = serializers.DateField()
    matrix = serializers.JSONField(help_text="matrix[tier before][tier after] = clients; 'none' = not tiered.")


class ReactivationSerializer(serializers.Serializer):
    client_no = serializers.CharField(source="client.client_no")
    name = serializers.CharField(source="client.name")
    branch = serializers.CharField(source="client.branch.code")
    account_manager = serializers.CharField(source="client.account_manager.employee_no", allow_null=True, default=None)
    as_of = serializers.DateField()
    assets = serializers.DecimalField(max_digits=21, decimal_places=2)
    commission = serializers.DecimalField(max_digits=20, decimal_places=2)
    assets_percentile = serializers.FloatField()
    commission_percentile = serializers.FloatField()


class NeedsProfileSerializer(serializers.Serializer):
    client_no = serializers.CharField(source="client.client_no")
    as_of = serializers.DateField()
    trades = serializers.IntegerField()
    active_days = serializers.IntegerField()
    trades_per_month = serializers.FloatField()
    amount = serializers.DecimalField(max_digits=20, decimal_places=2)
    avg_ticket = serializers.DecimalField(max_digits=20, decimal_places=2, allow_null=True)
    turnover = serializers.FloatField(allow_null=True)
    holding_style = serializers.CharField()
    holding_mix = serializers.JSONField()
    primary_channel = serializers.CharField()
    channel_mix = serializers.JSONField()
    product_mix = serializers.JSONField()
    preferences = serializers.JSONField()
    top_industries = serializers.JSONField()


class StageRunSerializer(serializers.Serializer):
    name = serializers.CharField()
    attempt = serializers.IntegerField()
    status = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    rows = serializers.IntegerField()
    chunks_total = serializers.IntegerField()
    chunks_done = serializers.IntegerField()
    detail = serializers.JSONField()
    error = serializers.CharField()


class NightlyRunSerializer(serializers.Serializer):
    as_of = serializers.DateField()
    status = serializers.CharField()
    attempt = serializers.IntegerField()
    trigger = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField()
    stages = serializers.SerializerMethodField()

    def get_stages(self, run: object) -> list[dict]:
        current = [stage for stage in run.stage_runs.all() if stage.attempt == run.attempt]
        return StageRunSerializer(sorted(current, key=lambda stage: stage.position), many=True).data


class OverrideCreateSerializer(serializers.Serializer):
    tier = TierCodeField()
    reason = serializers.CharField(max_length=2000)
    expires_on = serializers.DateField()
    starts_on = serializers.DateField(required=False)


class OverrideEndSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200)
