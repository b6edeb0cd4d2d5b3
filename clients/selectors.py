"""Reads of client data for the API (and any page that wants the same rows).

Every selector takes the requesting user and applies the one permission policy
(brokercrm.policy): a row whose client is outside the user's scope is never returned,
and a lookup outside it raises Http404. Each selector also owns its joins, so the number
of queries per page does not grow with the page size.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Prefetch, QuerySet

from brokercrm.policy import client_scope, get_visible_or_404, scope_queryset
from clients.models import AssetSnapshot, CashFlow, Client, Instrument, Interaction, RiskAssessment, Trade

User = AbstractBaseUser | AnonymousUser


def client_list(*, user: User) -> QuerySet[Client]:
    """The clients `user` may see, with branch and account manager joined."""
    return scope_queryset(user, Client.objects.select_related("branch", "account_manager__user"))


def client_get(*, user: User, client_no: str) -> Client:
    """The client numbered `client_no` if `user` may see it, else Http404.

    The result carries KYC (None when there is no profile) and
    `current_risk_assessment`: the latest suitability assessment, or None.
    """
    queryset = Client.objects.select_related("branch", "account_manager__user", "kyc").prefetch_related(
        Prefetch(
            "risk_assessments",
            queryset=RiskAssessment.objects.order_by("-assessed_on")[:1],
            to_attr="latest_risk_assessments",
        )
    )
    client = get_visible_or_404(user, queryset, client_no=client_no)
    client.current_risk_assessment = next(iter(client.latest_risk_assessments), None)
    return client


def client_get_visible(*, user: User, client_no: str) -> Client:
    """The bare client numbered `client_no` if `user` may see it, else Http404."""
    return get_visible_or_404(user, Client.objects.only("pk", "client_no"), client_no=client_no)


def ledger_scope(user: User, queryset: QuerySet) -> QuerySet:
    """Rows of a ledger table (trades, cash flows, snapshots) whose client `user` may see, as
    `client_id IN (SELECT id FROM clients_client WHERE <the policy's scope>)`: still one
    statement.

    Not the policy's join through the client (`client__account_manager__user`): on the
    1,000,000-client book PostgreSQL planned that join as a parallel sequential scan of the
    whole client table (the planner cannot know which manager's id the user has, and it
    overestimates trades per client), 0.3-0.5 s for a book of 300 clients; the sub-select reads
    the manager's clients by index first, whatever the size of the firm (bench/page_bench.py).
    """
    if client_scope(user) is None:
        return queryset
    return queryset.filter(client_id__in=scope_queryset(user, Client.objects.all()).values("pk"))


def trade_list(*, user: User) -> QuerySet[Trade]:
    """Trades of the clients `user` may see, with client, instrument and the reversed trade joined."""
    queryset = Trade.objects.select_related("client", "instrument", "reverses").only(
        *_TRADE_COLUMNS, "client__client_no", "instrument__symbol", "instrument__asset_class", "reverses__trade_id"
    )
    return ledger_scope(user, queryset)


_TRADE_COLUMNS = (
    "trade_id",
    "client",
    "executed_at",
    "instrument",
    "side",
    "quantity",
    "price",
    "amount",
    "commission",
    "channel",
    "realized_pnl",
    "reverses",
)


def cash_flow_list(*, user: User) -> QuerySet[CashFlow]:
    """Deposits and withdrawals of the clients `user` may see."""
    queryset = CashFlow.objects.select_related("client", "reverses").only(
        "flow_id", "client", "kind", "amount", "occurred_at", "reverses", "client__client_no", "reverses__flow_id"
    )
    return ledger_scope(user, queryset)


def asset_snapshot_list(*, user: User) -> QuerySet[AssetSnapshot]:
    """End-of-day custody snapshots of the clients `user` may see."""
    queryset = AssetSnapshot.objects.select_related("client").only(
        "client", "as_of", "cash", "market_value", "total", "client__client_no"
    )
    return ledger_scope(user, queryset)


def instrument_list() -> QuerySet[Instrument]:
    """Every instrument: reference data, not client-scoped."""
    return Instrument.objects.all()


def interaction_list(*, user: User, client_no: str) -> QuerySet[Interaction]:
    """Contacts with one client, if `user` may see the client (else Http404)."""
    client = client_get_visible(user=user, client_no=client_no)
    return Interaction.objects.filter(client=client).select_related("by")
