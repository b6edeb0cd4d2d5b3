"""Client pages.

The home page is the signed-in user's book: who they may see comes from the permission
policy (through clients.selectors.client_list, which also owns the joins), never from a
filter written here.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Page, Paginator
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from brokercrm.policy import sees_all_clients
from brokercrm.roles import TEAM_LEAD, has_role
from clients.models import AssetSnapshot, CashFlow, Client, Interaction, Trade
from clients.selectors import client_get, client_list
from retention import selectors as retention_selectors
from retention.scoring import reason_text
from segmentation import selectors as segmentation_selectors
from segmentation.models import NeedsProfile, ResultSet, TierHistory, TierResult

WORKLIST_SIZE = 8

PAGE_SIZE = 50
# Longer input is not a client number or a name; it is cut rather than searched.
MAX_QUERY_LENGTH = 100


def book_counts(*, book: QuerySet) -> dict[str, int]:
    """{"open": ..., "total": ...} for a queryset of clients, in one query.

    Open means not closed (restricted accounts are still open), as ClientQuerySet.open().
    """
    return book.aggregate(
        total=Count("pk"),
        open=Count("pk", filter=~Q(status=Client.Status.CLOSED)),
    )


def book_search(*, book: QuerySet, query: str) -> QuerySet:
    """The clients of `book` matching `query` (part of the name, or the start of the client
    number), in client-number order."""
    rows = book.order_by("client_no")
    if query:
        rows = rows.filter(Q(name__icontains=query) | Q(client_no__istartswith=query))
    return rows


def _book_title(request: HttpRequest) -> str:
    if sees_all_clients(request.user):
        return _("All clients")
    if has_role(request.user, TEAM_LEAD):
        return _("Team book")
    return _("My book")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The user's book: counts, a search box (GET q) and the clients, 50 per page.

    A fixed number of queries whatever the size of the book: one for the counts, one for
    the page count and one for the page rows (joined).
    """
    query = request.GET.get("q", "").strip()[:MAX_QUERY_LENGTH]
    book = client_list(user=request.user)
    page: Page = Paginator(book_search(book=book, query=query), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "title": _book_title(request),
        "counts": book_counts(book=book),
        "query": query,
        "page": page,
        **worklists(request.user),
    }
    return render(request, "clients/home.html", context)


def worklists(user: object) -> dict:
    """Who to call today and why: the clients with the most value at risk (with their top
    reason) and those about to go dormant, from the last published night. One query for the
    published generations, one per list."""
    generations = retention_selectors.published_generations()
    at_risk, slipping = [], []
    if ResultSet.Kind.CHURN in generations:
        at_risk = list(
            retention_selectors.churn_scores(user=user, generation=generations[ResultSet.Kind.CHURN])
            .filter(risk__gte=40)
            .order_by("-value_at_risk", "-id")[:WORKLIST_SIZE]
        )
    for score in at_risk:
        score.top_reason = reason_text(score.reasons[0]) if score.reasons else ""
    if ResultSet.Kind.ACTIVITY in generations:
        slipping = list(
            retention_selectors.client_activity_list(user=user, generation=generations[ResultSet.Kind.ACTIVITY])
            .filter(about_to_go_dormant=True)
            .order_by("-overdue_ratio", "-id")[:WORKLIST_SIZE]
        )
    return {"at_risk": at_risk, "slipping": slipping}


HISTORY_ROWS = 20


@login_required
def client_detail(request: HttpRequest, client_no: str) -> HttpResponse:
    """Client 360: profile, KYC (masked), risk level, tier and its history, activity and churn
    scores with reasons and CLV, needs profile, recent trades, cash flows, assets and
    interactions. A client outside the user's scope is a 404, as everywhere. A fixed number of
    queries (pinned by a test), reading stored nightly results only."""
    client = client_get(user=request.user, client_no=client_no)
    scores = retention_selectors.client_scores_for(client)
    tier_day = segmentation_selectors.tier_current_as_of()
    tier = TierResult.objects.filter(as_of=tier_day, client_id=client.pk).first() if tier_day else None
    needs_generation = (
        ResultSet.objects.filter(kind=ResultSet.Kind.NEEDS, is_published=True)
        .order_by("-as_of")
        .values_list("generation", flat=True)
        .first()
    )
    needs = (
        NeedsProfile.objects.filter(generation=needs_generation, client_id=client.pk).first()
        if needs_generation
        else None
    )
    churn = scores.churn
    context = {
        "client": client,
        "kyc": getattr(client, "kyc", None),
        "risk": client.current_risk_assessment,
        "tier": tier,
        "tier_changes": list(TierHistory.objects.filter(client_id=client.pk).order_by("-as_of")[:HISTORY_ROWS]),
        "activity": scores.activity,
        "churn": churn,
        "reasons": [{**reason, "text": reason_text(reason)} for reason in (churn.reasons if churn else [])],
        "needs": needs,
        "trades": list(
            Trade.objects.filter(client=client)
            .select_related("instrument")
            .order_by("-executed_at", "-id")[:HISTORY_ROWS]
        ),
        "cash_flows": list(CashFlow.objects.filter(client=client).order_by("-occurred_at", "-id")[:HISTORY_ROWS]),
        "assets": list(AssetSnapshot.objects.filter(client=client).order_by("-as_of")[:12]),
        "interactions": list(
            Interaction.objects.filter(client=client)
            .select_related("by")
            .order_by("-occurred_at", "-id")[:HISTORY_ROWS]
        ),
    }
    return render(request, "clients/client_detail.html", context)
