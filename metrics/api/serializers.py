"""Output shapes of the metrics API."""

from __future__ import annotations

from rest_framework import serializers

from metrics.models import Dimension


class MetricValueSerializer(serializers.Serializer):
    as_of = serializers.DateField()
    metric = serializers.CharField(source="definition.code")
    version = serializers.IntegerField(source="definition.version")
    unit = serializers.CharField(source="definition.unit")
    dimension = serializers.ChoiceField(choices=Dimension.choices)
    key = serializers.CharField(help_text="'' overall; tier code; account manager or branch id.")
    label = serializers.SerializerMethodField(help_text="Tier code, employee number or branch code.")
    value = serializers.DecimalField(max_digits=22, decimal_places=4, allow_null=True, help_text="Null: undefined.")
    numerator = serializers.DecimalField(max_digits=22, decimal_places=4, allow_null=True)
    denominator = serializers.DecimalField(max_digits=22, decimal_places=4, allow_null=True)

    def get_label(self, row: object) -> str:
        if row.dimension == "account_manager" and row.account_manager is not None:
            return row.account_manager.employee_no
        if row.dimension == "branch" and row.branch is not None:
            return row.branch.code
        return row.key or "overall"


class DashboardSerializer(serializers.Serializer):
    as_of = serializers.DateField(allow_null=True)
    computed_at = serializers.DateTimeField(allow_null=True)
    left_out = serializers.JSONField(help_text="Metrics left out of this snapshot and why.")
    rows = MetricValueSerializer(many=True)


class MetricDefinitionSerializer(serializers.Serializer):
    code = serializers.CharField()
    version = serializers.IntegerField()
    name = serializers.CharField()
    unit = serializers.CharField()
    formula = serializers.CharField()
    params = serializers.JSONField()
    effective_from = serializers.DateField()
