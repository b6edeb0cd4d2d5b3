"""Output serializers of the client API: explicit fields, no queries of their own
(the selectors join what they read), no rules beyond shape."""

from __future__ import annotations

from rest_framework import serializers

from clients.models import (
    AccountManager,
    AssetSnapshot,
    CashFlow,
    Client,
    Instrument,
    Interaction,
    KYCProfile,
    RiskAssessment,
    Trade,
    mask_identifier,
)


class AccountManagerSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="__str__", help_text="Full name, or the username if it has none.")

    class Meta:
        model = AccountManager
        fields = ["employee_no", "name"]


class ClientSerializer(serializers.ModelSerializer):
    branch = serializers.CharField(source="branch.code", help_text="Branch code.")
    branch_name = serializers.CharField(source="branch.name")
    account_manager = AccountManagerSerializer(allow_null=True)

    class Meta:
        model = Client
        fields = [
            "client_no",
            "name",
            "kind",
            "status",
            "branch",
            "branch_name",
            "account_manager",
            "opened_on",
            "closed_on",
        ]


class KYCSummarySerializer(serializers.ModelSerializer):
    id_number = serializers.SerializerMethodField(
        help_text="Masked (first 3 and last 4 characters) for everyone but compliance officers."
    )

    class Meta:
        model = KYCProfile
        fields = [
            "id_type",
            "id_number",
            "id_expiry",
            "nationality",
            "is_pep",
            "sanctions_status",
            "aml_risk",
            "verification_status",
            "last_review_on",
            "next_review_due",
        ]

    def get_id_number(self, kyc: KYCProfile) -> str:
        if self.context.get("reveal_identifiers"):
            return kyc.id_number
        return mask_identifier(kyc.id_number)


class RiskAssessmentSummarySerializer(serializers.ModelSerializer):
    risk_level_label = serializers.CharField(source="get_risk_level_display", help_text="C1 .. C5.")

    class Meta:
        model = RiskAssessment
        fields = ["risk_level", "risk_level_label", "score", "horizon", "assessed_on", "expires_on"]


class ClientDetailSerializer(ClientSerializer):
    kyc = KYCSummarySerializer(allow_null=True, help_text="Null when the client has no KYC profile yet.")
    current_risk = RiskAssessmentSummarySerializer(
        source="current_risk_assessment", allow_null=True, help_text="The latest suitability assessment, if any."
    )

    class Meta(ClientSerializer.Meta):
        fields = [
            *ClientSerializer.Meta.fields,
            "phone",
            "email",
            "address",
            "birthday",
            "kyc",
            "current_risk",
            "updated_at",
        ]


class TradeSerializer(serializers.ModelSerializer):
    client = serializers.CharField(source="client.client_no", help_text="Client number.")
    instrument = serializers.CharField(source="instrument.symbol", help_text="Instrument symbol.")
    asset_class = serializers.ChoiceField(source="instrument.asset_class", choices=Instrument.AssetClass.choices)
    reverses = serializers.CharField(
        source="reverses.trade_id", allow_null=True, help_text="trade_id of the trade this row cancels."
    )

    class Meta:
        model = Trade
        fields = [
            "trade_id",
            "client",
            "executed_at",
            "instrument",
            "asset_class",
            "side",
            "quantity",
            "price",
            "amount",
            "commission",
            "channel",
            "realized_pnl",
            "reverses",
        ]


class CashFlowSerializer(serializers.ModelSerializer):
    client = serializers.CharField(source="client.client_no", help_text="Client number.")
    reverses = serializers.CharField(
        source="reverses.flow_id", allow_null=True, help_text="flow_id of the cash flow this row cancels."
    )

    class Meta:
        model = CashFlow
        fields = ["flow_id", "client", "kind", "amount", "occurred_at", "reverses"]


class AssetSnapshotSerializer(serializers.ModelSerializer):
    client = serializers.CharField(source="client.client_no", help_text="Client number.")
    total = serializers.DecimalField(max_digits=21, decimal_places=2, help_text="cash + market_value.")

    class Meta:
        model = AssetSnapshot
        fields = ["client", "as_of", "cash", "market_value", "total"]


class InstrumentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Instrument
        fields = [
            "symbol",
            "name",
            "asset_class",
            "market",
            "board",
            "industry",
            "cap_class",
            "is_blue_chip",
            "is_st",
            "risk_level",
        ]


class InteractionSerializer(serializers.ModelSerializer):
    by = serializers.CharField(source="by.get_username", allow_null=True, help_text="Username of the staff member.")

    class Meta:
        model = Interaction
        fields = ["channel", "direction", "summary", "outcome", "occurred_at", "by"]
