"""FilterSets of the client API. Strict: a malformed value or unknown choice answers 400."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from brokercrm.api.filters import DateTimeBeforeFilter, DateTimeFromFilter
from clients.models import AssetSnapshot, CashFlow, Channel, Client, Instrument, Interaction, ProductRiskLevel, Trade


class ClientFilter(django_filters.FilterSet):
    branch = django_filters.CharFilter(field_name="branch__code", help_text="Branch code, e.g. SH01.")
    account_manager = django_filters.CharFilter(
        field_name="account_manager__employee_no", help_text="Employee number of the account manager."
    )
    status = django_filters.ChoiceFilter(choices=Client.Status.choices)
    kind = django_filters.ChoiceFilter(choices=Client.Kind.choices)
    opened_after = django_filters.DateFilter(
        field_name="opened_on", lookup_expr="gte", help_text="Opened on or after this date (YYYY-MM-DD)."
    )
    opened_before = django_filters.DateFilter(
        field_name="opened_on", lookup_expr="lte", help_text="Opened on or before this date (YYYY-MM-DD)."
    )
    q = django_filters.CharFilter(
        method="search", max_length=120, help_text="Part of the client's name, or the start of the client number."
    )

    class Meta:
        model = Client
        fields = ["branch", "account_manager", "status", "kind", "opened_after", "opened_before", "q"]

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(name__icontains=value) | Q(client_no__istartswith=value))


class TradeFilter(django_filters.FilterSet):
    client = django_filters.CharFilter(field_name="client__client_no", help_text="Client number.")
    instrument = django_filters.CharFilter(field_name="instrument__symbol", help_text="Symbol, e.g. 600519.SH.")
    asset_class = django_filters.ChoiceFilter(
        field_name="instrument__asset_class", choices=Instrument.AssetClass.choices
    )
    channel = django_filters.ChoiceFilter(choices=Channel.choices)
    side = django_filters.ChoiceFilter(choices=Trade.Side.choices)
    executed_after = DateTimeFromFilter(field_name="executed_at")
    executed_before = DateTimeBeforeFilter(field_name="executed_at")

    class Meta:
        model = Trade
        fields = ["client", "instrument", "asset_class", "channel", "side", "executed_after", "executed_before"]


class CashFlowFilter(django_filters.FilterSet):
    client = django_filters.CharFilter(field_name="client__client_no", help_text="Client number.")
    kind = django_filters.ChoiceFilter(choices=CashFlow.Kind.choices)
    occurred_after = DateTimeFromFilter(field_name="occurred_at")
    occurred_before = DateTimeBeforeFilter(field_name="occurred_at")

    class Meta:
        model = CashFlow
        fields = ["client", "kind", "occurred_after", "occurred_before"]


class AssetSnapshotFilter(django_filters.FilterSet):
    client = django_filters.CharFilter(field_name="client__client_no", help_text="Client number.")
    as_of = django_filters.DateFilter(help_text="Snapshots of exactly this day (YYYY-MM-DD).")
    as_of_after = django_filters.DateFilter(
        field_name="as_of", lookup_expr="gte", help_text="On or after this date (YYYY-MM-DD)."
    )
    as_of_before = django_filters.DateFilter(
        field_name="as_of", lookup_expr="lte", help_text="On or before this date (YYYY-MM-DD)."
    )

    class Meta:
        model = AssetSnapshot
        fields = ["client", "as_of", "as_of_after", "as_of_before"]


class InstrumentFilter(django_filters.FilterSet):
    asset_class = django_filters.ChoiceFilter(choices=Instrument.AssetClass.choices)
    market = django_filters.ChoiceFilter(choices=Instrument.Market.choices)
    # A typed choice, not a NumberFilter: that one would accept ?risk_level=2.5.
    risk_level = django_filters.TypedChoiceFilter(choices=ProductRiskLevel.choices, coerce=int)
    q = django_filters.CharFilter(
        method="search", max_length=120, help_text="Start of the symbol, or part of the name."
    )

    class Meta:
        model = Instrument
        fields = ["asset_class", "market", "risk_level", "q"]

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(symbol__istartswith=value) | Q(name__icontains=value))


class InteractionFilter(django_filters.FilterSet):
    channel = django_filters.ChoiceFilter(choices=Interaction.Channel.choices)
    direction = django_filters.ChoiceFilter(choices=Interaction.Direction.choices)
    occurred_after = DateTimeFromFilter(field_name="occurred_at")
    occurred_before = DateTimeBeforeFilter(field_name="occurred_at")

    class Meta:
        model = Interaction
        fields = ["channel", "direction", "occurred_after", "occurred_before"]
