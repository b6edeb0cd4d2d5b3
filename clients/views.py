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
from clients.models import Client
from clients.selectors import client_list

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
    }
    return render(request, "clients/home.html", context)
