"""Client pages.

The home page is the signed-in user's book: who they may see comes from the permission
policy (through clients.selectors.client_list, which also owns the joins), never from a
filter written here.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import Case, Count, F, OuterRef, Q, QuerySet, Subquery, Sum, When
from django.db.models.functions import TruncDate
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from brokercrm.lib.exchange_time import day_start
from brokercrm.policy import sees_all_clients
from brokercrm.roles import ACCOUNT_MANAGER, TEAM_LEAD, has_role
from clients import forms as workspace_forms
from clients import services as client_services
from clients import workspace
from clients.api.filters import TradeFilter
from clients.models import AssetSnapshot, CashFlow, Client, Interaction, Trade
from clients.selectors import client_get, client_list
from feedback import services as feedback_services
from feedback.models import Complaint, SurveyResponse
from retention import selectors as retention_selectors
from retention import services as task_services
from retention.models import ChurnScore
from retention.scoring import reason_text
from retention.work import callbacks as callback_services
from retention.work import selectors as work_selectors
from retention.work.models import Callback, CallbackStatus, RetentionTask, TaskSource, TaskStatus
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
        # Client numbers by prefix, as typed or in capitals (back-office numbers are upper
        # case): the unique column's pattern index serves it; a case-insensitive prefix
        # (UPPER(client_no) LIKE ...) could not use it.
        rows = rows.filter(
            Q(name__icontains=query) | Q(client_no__startswith=query) | Q(client_no__startswith=query.upper())
        )
    return rows


def _book_title(request: HttpRequest) -> str:
    if sees_all_clients(request.user):
        return _("All clients")
    if has_role(request.user, TEAM_LEAD):
        return _("Team book")
    return _("My book")


def can_act(user: object) -> bool:
    """Who acts on clients from the pages (log a contact, add or complete a task, record a
    callback or a complaint): account managers and team leads, within their scope. Compliance,
    ops and API systems read the 360 but do not work the book from it (403 on a write)."""
    return bool(getattr(user, "is_authenticated", False) and has_role(user, ACCOUNT_MANAGER, TEAM_LEAD))


def _check_can_act(user: object) -> None:
    if not can_act(user):
        raise PermissionDenied(_("Your role reads client pages but does not act on clients."))


def _error_field(message: str) -> str | None:
    """The field a service message names ("due: expected ..."), if any."""
    head, sep, _rest = message.partition(":")
    return head if sep and head.isidentifier() else None


def _refused(
    request: HttpRequest, form: workspace_forms.WorkspaceForm, message: str, field: str | None, back: str
) -> HttpResponse | None:
    """A service refused the write. A refusal about a field of the form is shown next to it (the
    caller re-renders the page: None); any other (the task or callback was closed meanwhile ...)
    is a message on the page the user comes back to."""
    if field in form.fields:
        form.service_error(_(message), field)
        return None
    messages.error(request, _(message))
    return redirect(back)


@login_required
@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """The user's book: counts, a search box (GET q) and the clients, 50 per page; today's work
    and the call-first lists above it.

    A fixed number of queries whatever the size of the book: one for the counts, one for
    the page count and one for the page rows (joined), one for today's tasks.
    """
    return _home_page(request)


def _home_page(
    request: HttpRequest, *, done_forms: dict[int, workspace_forms.TaskDoneForm] | None = None, status: int = 200
) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:MAX_QUERY_LENGTH]
    book = client_list(user=request.user)
    counts = book_counts(book=book)
    paginator = Paginator(book_search(book=book, query=query), PAGE_SIZE)
    if not query:
        # The whole book is listed: its size is already counted (a second COUNT over the
        # firm's clients cost ~0.1 s on the 1,000,000-client book for firm-wide roles).
        paginator.count = counts["total"]
    page: Page = paginator.get_page(request.GET.get("page"))
    generations = retention_selectors.published_generations()
    context = {
        "title": _book_title(request),
        "counts": counts,
        "query": query,
        "page": page,
        **worklists(request.user, generations=generations),
        **todays_work(request.user, churn_generation=generations.get(ResultSet.Kind.CHURN), forms=done_forms),
        **book_panels(request.user, activity_generation=generations.get(ResultSet.Kind.ACTIVITY)),
    }
    return render(request, "clients/home.html", context, status=status)


def book_panels(user: object, *, activity_generation: int | None) -> dict:
    """For those who work a book (account managers, team leads): the book at a glance and the
    lists of clients to look at: dormant with assets, high assets but little trading,
    birthdays this week, KYC documents and suitability assessments expiring, open complaints.
    One query each (clients.workspace); none for firm-wide roles, whose book is the firm."""
    if not can_act(user):
        return {"book_panels": False}
    today = timezone.localdate()
    return {
        "book_panels": True,
        "glance": workspace.book_glance(
            user, as_of=segmentation_selectors.tier_current_as_of(), activity_generation=activity_generation
        ),
        "dormant": workspace.dormant_clients(user, activity_generation=activity_generation),
        "reactivation": list(
            segmentation_selectors.reactivation_list(user=user).order_by("-assets", "client_id")[: workspace.PANEL_SIZE]
        ),
        "birthdays": workspace.birthdays_this_week(user, today=today),
        "kyc_items": workspace.kyc_expiring(user, today=today),
        "complaints_open": workspace.open_complaints(user, now=timezone.now()),
    }


TODAY_SIZE = 20


def todays_work(
    user: object, *, churn_generation: int | None, forms: dict[int, workspace_forms.TaskDoneForm] | None = None
) -> dict:
    """The open tasks due today or overdue: an account manager's own, a team lead's team's
    (through the policy). Highest priority first, then the most value at risk (last night's
    churn scores), then the oldest due. One query; at most TODAY_SIZE rows (and whether there
    are more). Firm-wide roles have no panel (and no query)."""
    if not can_act(user):
        return {"today_panel": False}
    today = timezone.localdate()
    tasks = work_selectors.task_list(user=user).filter(status=TaskStatus.OPEN, due__lte=today)
    team_view = has_role(user, TEAM_LEAD)
    if not team_view:
        tasks = tasks.filter(assignee=user)
    order: list = ["-priority", "due", "id"]
    if churn_generation is not None:
        tasks = tasks.annotate(
            value_at_risk=Subquery(
                ChurnScore.objects.filter(generation=churn_generation, client_id=OuterRef("client_id")).values(
                    "value_at_risk"
                )[:1]
            )
        )
        order.insert(1, F("value_at_risk").desc(nulls_last=True))
    rows = list(tasks.order_by(*order)[: TODAY_SIZE + 1])
    forms = forms or {}
    for task in rows[:TODAY_SIZE]:
        task.overdue = task.due < today
        task.is_callback = task.source == TaskSource.CALLBACK
        task.can_work = task_services.task_can_work(user, task)
        task.done_form = forms.get(task.pk) or workspace_forms.TaskDoneForm(prefix=f"done-{task.pk}")
        _task_action_forms(task)
    return {
        "today_panel": True,
        "today_tasks": rows[:TODAY_SIZE],
        "today_more": len(rows) > TODAY_SIZE,
        "today_team_view": team_view,
        "today": today,
    }


@login_required
@require_POST
def task_done(request: HttpRequest, pk: int) -> HttpResponse:
    """Complete a task from the home page: the contact is recorded as an interaction by the
    service. Outside the scope: 404; a role that does not act, or another manager's task: 403."""
    task = work_selectors.task_get(user=request.user, pk=pk)
    _check_can_act(request.user)
    if not task_services.task_can_work(request.user, task):
        raise PermissionDenied(_("This task is assigned to someone else; ask your team lead to reassign it."))
    if task.source == TaskSource.CALLBACK:
        messages.info(request, _("This is a regulatory callback: record it with its checklist on the client's page."))
        return redirect(reverse("client-detail", args=[task.client.client_no]) + "#callbacks-heading")
    form = workspace_forms.TaskDoneForm(request.POST, prefix=f"done-{task.pk}")
    if form.is_valid():
        try:
            task_services.task_complete(task=task, by=request.user, **form.cleaned_data)
        except task_services.TaskError as exc:
            refused = _refused(request, form, str(exc), _error_field(str(exc)), reverse("home") + "#today-heading")
            if refused is not None:
                return refused
        else:
            messages.success(
                request, _("Done: %(kind)s for %(client)s.") % {"kind": task.get_kind_display(), "client": task.client}
            )
            return redirect(_next_or(request, reverse("home") + "#today-heading"))
    back = _next_or(request, None)
    if back is not None:
        # From the client's page: the errors come back as a message there.
        messages.error(request, _form_errors_text(form))
        return redirect(back)
    return _home_page(request, done_forms={task.pk: form.mark_errors()}, status=400)


def _next_or(request: HttpRequest, default: str | None) -> str | None:
    """The page the form came from (POST `next`), if it is a path on this site."""
    target = request.POST.get("next", "")
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def _form_errors_text(form: workspace_forms.WorkspaceForm) -> str:
    """A form's errors in one line, each with its field's label."""
    parts = []
    for name, errors in form.errors.items():
        label = form.fields[name].label if name in form.fields else ""
        text = " ".join(str(error) for error in errors)
        parts.append(f"{label}: {text}" if label else text)
    return " ".join(parts)


def _workable_task(request: HttpRequest, pk: int) -> object:
    task = work_selectors.task_get(user=request.user, pk=pk)
    _check_can_act(request.user)
    if not task_services.task_can_work(request.user, task):
        raise PermissionDenied(_("This task is assigned to someone else; ask your team lead to reassign it."))
    return task


@login_required
@require_POST
def task_reschedule(request: HttpRequest, pk: int) -> HttpResponse:
    """Move an open task to a new due date (not in the past). Scope and role as for Done; the
    user returns to the page the form was on (home by default) with a message."""
    task = _workable_task(request, pk)
    back = _next_or(request, reverse("home") + "#today-heading")
    form = workspace_forms.TaskRescheduleForm(request.POST, prefix=f"resched-{task.pk}")
    if not form.is_valid():
        messages.error(request, _form_errors_text(form))
        return redirect(back)
    try:
        task_services.task_update(task=task, by=request.user, due=form.cleaned_data["due"])
    except task_services.TaskError as exc:
        messages.error(request, _(str(exc)))
    else:
        messages.success(
            request,
            _("Moved to %(due)s: %(kind)s for %(client)s.")
            % {"due": task.due.isoformat(), "kind": task.get_kind_display(), "client": task.client},
        )
    return redirect(back)


@login_required
@require_POST
def task_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Cancel an open task with a reason (a regulatory callback cannot be cancelled)."""
    task = _workable_task(request, pk)
    back = _next_or(request, reverse("home") + "#today-heading")
    form = workspace_forms.TaskCancelForm(request.POST, prefix=f"cancel-{task.pk}")
    if not form.is_valid():
        messages.error(request, _form_errors_text(form))
        return redirect(back)
    try:
        task_services.task_cancel(task=task, by=request.user, reason=form.cleaned_data["reason"])
    except task_services.TaskError as exc:
        messages.error(request, _(str(exc)))
    else:
        messages.success(
            request, _("Cancelled: %(kind)s for %(client)s.") % {"kind": task.get_kind_display(), "client": task.client}
        )
    return redirect(back)


def _task_action_forms(task: object) -> None:
    """Unbound reschedule and cancel forms on a task, prefixed by its id."""
    task.reschedule_form = workspace_forms.TaskRescheduleForm(prefix=f"resched-{task.pk}", initial={"due": task.due})
    task.cancel_form = workspace_forms.TaskCancelForm(prefix=f"cancel-{task.pk}")


# The churn risk from which a client is on the home page's call list (most value at risk first).
AT_RISK_MIN = 40


def worklists(user: object, *, generations: dict[str, int] | None = None) -> dict:
    """Who to call today and why: the clients with the most value at risk (with their top
    reason) and those about to go dormant, from the last published night. One query for the
    published generations (unless given), one per list.

    Only for those who call clients (account managers, team leads): firm-wide roles
    (compliance, ops, the API user) get no lists, and no queries. Over the whole firm the
    two lists sorted every score and activity row of the night (about 1 s on the
    1,000,000-client book); those users filter the same rows in the API."""
    if not can_act(user):
        return {"at_risk": [], "slipping": [], "at_risk_min": AT_RISK_MIN}
    if generations is None:
        generations = retention_selectors.published_generations()
    at_risk, slipping = [], []
    if ResultSet.Kind.CHURN in generations:
        at_risk = list(
            retention_selectors.churn_scores(user=user, generation=generations[ResultSet.Kind.CHURN])
            .filter(risk__gte=AT_RISK_MIN)
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
    return {"at_risk": at_risk, "slipping": slipping, "at_risk_min": AT_RISK_MIN}


HISTORY_ROWS = 20
ASSET_ROWS = 12
ASSET_POINTS = 24


def asset_chart(client: Client, snapshots: list[AssetSnapshot]) -> dict | None:
    """The client's assets over time (the snapshots, oldest first) and, at each snapshot, the
    net cash that came in since the one before (deposits minus withdrawals, reversals
    included): what moved the assets, the client's money or the market. One query (the flows
    summed per exchange day since the oldest snapshot); None with fewer than two snapshots."""
    if len(snapshots) < 2:
        return None
    points = sorted(snapshots, key=lambda snap: snap.as_of)
    signed = Case(When(kind=CashFlow.Kind.WITHDRAWAL, then=-F("amount")), default=F("amount"))
    daily = (
        CashFlow.objects.filter(client=client, occurred_at__gte=day_start(points[0].as_of + dt.timedelta(days=1)))
        .annotate(day=TruncDate("occurred_at", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(net=Sum(signed))
        .order_by("day")
    )
    net_by_day = [(row["day"], row["net"]) for row in daily]
    flows, index = [], 0
    for snap in points[1:]:
        total = Decimal(0)
        while index < len(net_by_day) and net_by_day[index][0] <= snap.as_of:
            total += net_by_day[index][1]
            index += 1
        flows.append(float(total))
    return {
        "dates": [snap.as_of.isoformat() for snap in points],
        "assets": [float(snap.total) for snap in points],
        "cash": [float(snap.cash) for snap in points],
        "flows": [None, *flows],
    }


TASK_ROWS = 20
CALLBACK_ROWS = 10
COMPLAINT_ROWS = 20
SURVEY_ROWS = 20


@login_required
@require_safe
def client_detail(request: HttpRequest, client_no: str) -> HttpResponse:
    """Client 360: profile, KYC (masked), risk level, tier and its history, activity and churn
    scores with reasons and CLV, needs profile, recent trades, cash flows, assets and
    interactions; open tasks, callbacks, complaints and survey answers, and the forms to act.
    A client outside the user's scope is a 404, as everywhere. A fixed number of queries
    (pinned by a test), reading stored nightly results only."""
    return _client_page(request, client_get(user=request.user, client_no=client_no))


def _client_page(
    request: HttpRequest,
    client: Client,
    *,
    forms: dict[str, workspace_forms.WorkspaceForm] | None = None,
    callback_forms: dict[int, workspace_forms.CallbackForm] | None = None,
    status: int = 200,
) -> HttpResponse:
    forms = forms or {}
    callback_forms = callback_forms or {}
    user = request.user
    acting = can_act(user)
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
    snapshots = list(AssetSnapshot.objects.filter(client=client).order_by("-as_of")[:ASSET_POINTS])
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
        "assets": snapshots[:ASSET_ROWS],
        "assets_chart": asset_chart(client, snapshots),
        "chart_text": {"assets": _("Assets"), "flows": _("Net cash in (+) or out (-) since the snapshot before")},
        "interactions": list(
            Interaction.objects.filter(client=client)
            .select_related("by")
            .order_by("-occurred_at", "-id")[:HISTORY_ROWS]
        ),
        **_client_work(client, user=user, acting=acting, callback_forms=callback_forms),
        "can_act": acting,
        "interaction_form": forms.get("interaction") or workspace_forms.InteractionForm(prefix="interaction"),
        "task_form": forms.get("task") or workspace_forms.TaskForm(prefix="task"),
        "complaint_form": forms.get("complaint") or workspace_forms.ComplaintForm(prefix="complaint"),
    }
    return render(request, "clients/client_detail.html", context, status=status)


def _client_work(
    client: Client, *, user: object, acting: bool, callback_forms: dict[int, workspace_forms.CallbackForm]
) -> dict:
    """The client's open tasks, callbacks, complaints (with SLA breach flags as of now) and survey
    answers: one bounded query each."""
    callbacks = list(
        Callback.objects.filter(client_id=client.pk)
        .select_related("task")
        .order_by("-created_on", "-id")[:CALLBACK_ROWS]
    )
    for callback in callbacks:
        callback.is_open = callback.status != CallbackStatus.DONE
        callback.can_record = (
            acting and callback.is_open and (callback.task is None or task_services.task_can_work(user, callback.task))
        )
        callback.form = callback_forms.get(callback.pk) or workspace_forms.CallbackForm(
            prefix=f"callback-{callback.pk}"
        )
    open_tasks = list(
        RetentionTask.objects.filter(client_id=client.pk, status=TaskStatus.OPEN)
        .select_related("assignee")
        .order_by("due", "-priority", "id")[:TASK_ROWS]
    )
    for task in open_tasks:
        task.client = client
        task.is_callback = task.source == TaskSource.CALLBACK
        task.can_work = acting and task_services.task_can_work(user, task)
        if task.can_work and not task.is_callback:
            task.done_form = workspace_forms.TaskDoneForm(prefix=f"done-{task.pk}")
            _task_action_forms(task)
    return {
        "open_tasks": open_tasks,
        "callbacks": callbacks,
        "complaints": list(
            Complaint.objects.with_sla(timezone.now())
            .filter(client_id=client.pk)
            .order_by("-opened_at", "-id")[:COMPLAINT_ROWS]
        ),
        "surveys": list(
            SurveyResponse.objects.filter(client_id=client.pk)
            .select_related("question")
            .order_by("-answered_at", "-id")[:SURVEY_ROWS]
        ),
        "today": timezone.localdate(),
    }


TRADES_PAGE_SIZE = 50


def _trade_filter_labels() -> dict[str, str]:
    return {
        "instrument": _("Symbol"),
        "asset_class": _("Asset class"),
        "channel": _("Channel"),
        "side": _("Side"),
        "executed_after": _("From (date)"),
        "executed_before": _("To (date, inclusive)"),
    }


@login_required
@require_safe
def client_trades(request: HttpRequest, client_no: str) -> HttpResponse:
    """All of a client's trades, newest first, 50 a page, filtered by the API's own TradeFilter
    (instrument, asset class, side, channel, executed after/before). A malformed filter is a
    400 that names the field. Queries: scope, the filtered count and the page (instrument
    joined), all on the client's (client, executed_at) index."""
    client = client_get(user=request.user, client_no=client_no)
    params = request.GET.copy()
    params.pop("page", None)
    params.pop("client", None)  # the client is the page's, not a filter
    filters = TradeFilter(
        params,
        queryset=Trade.objects.filter(client=client).select_related("instrument").order_by("-executed_at", "-id"),
    )
    del filters.filters["client"]
    for name, label in _trade_filter_labels().items():
        filters.form.fields[name].label = label
    status = 200
    if filters.is_valid():
        rows = filters.qs
    else:
        rows = Trade.objects.none()
        status = 400
        for field in filters.form.errors:
            if field in filters.form.fields:
                filters.form.fields[field].widget.attrs.update(
                    {"aria-invalid": "true", "aria-describedby": f"{filters.form[field].auto_id}_error"}
                )
    page: Page = Paginator(rows, TRADES_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"client": client, "filters": filters, "page": page, "filtered": bool(params)}
    return render(request, "clients/client_trades.html", context, status=status)


def _actable_client(request: HttpRequest, client_no: str) -> Client:
    """The client if in scope (else 404) and the user acts on clients (else 403)."""
    client = client_get(user=request.user, client_no=client_no)
    _check_can_act(request.user)
    return client


def _client_url(client: Client, anchor: str) -> str:
    return reverse("client-detail", args=[client.client_no]) + f"#{anchor}"


def _back_to(client: Client, anchor: str) -> HttpResponse:
    return redirect(_client_url(client, anchor))


@login_required
@require_POST
def client_interaction_log(request: HttpRequest, client_no: str) -> HttpResponse:
    """Log a contact with the client (clients.services.interaction_log)."""
    client = _actable_client(request, client_no)
    form = workspace_forms.InteractionForm(request.POST, prefix="interaction")
    if form.is_valid():
        try:
            client_services.interaction_log(client=client, by=request.user, **form.cleaned_data)
        except client_services.InteractionError as exc:
            form.service_error(_(str(exc)), exc.field)
        else:
            messages.success(request, _("Interaction logged."))
            return _back_to(client, "contacts-heading")
    return _client_page(request, client, forms={"interaction": form.mark_errors()}, status=400)


@login_required
@require_POST
def client_task_add(request: HttpRequest, client_no: str) -> HttpResponse:
    """Open a task by hand (retention.services.open_task, source: a person); it goes to the
    client's account manager."""
    client = _actable_client(request, client_no)
    form = workspace_forms.TaskForm(request.POST, prefix="task")
    if form.is_valid():
        data = form.cleaned_data
        try:
            task_services.open_task(
                client=client,
                kind=data["kind"],
                reason_code="manual",
                reason_text=data["note"],
                due=data["due"],
                priority=data["priority"],
                source=TaskSource.PERSON,
                created_by=request.user,
            )
        except task_services.TaskError as exc:
            message = str(exc)
            field = {"reason_text": "note"}.get(_error_field(message) or "", _error_field(message))
            refused = _refused(request, form, message, field, _client_url(client, "tasks-heading"))
            if refused is not None:
                return refused
        else:
            messages.success(request, _("Task added."))
            return _back_to(client, "tasks-heading")
    return _client_page(request, client, forms={"task": form.mark_errors()}, status=400)


@login_required
@require_POST
def client_callback_record(request: HttpRequest, client_no: str, pk: int) -> HttpResponse:
    """Record a regulatory callback call: completed with its checklist, unreachable or failed
    (retention.work.callbacks.callback_attempt_record). An escalated callback is the team lead's."""
    client = _actable_client(request, client_no)
    callback = work_selectors.callback_get(user=request.user, pk=pk)
    if callback.client_id != client.pk:
        raise Http404
    if callback.task is not None and not task_services.task_can_work(request.user, callback.task):
        raise PermissionDenied(_("This callback is escalated to the team lead, who records the calls now."))
    form = workspace_forms.CallbackForm(request.POST, prefix=f"callback-{callback.pk}")
    if form.is_valid():
        try:
            callback = callback_services.callback_attempt_record(
                callback=callback, by=request.user, **form.service_arguments()
            )
        except (callback_services.CallbackError, task_services.TaskError) as exc:
            refused = _refused(
                request, form, str(exc), _error_field(str(exc)), _client_url(client, "callbacks-heading")
            )
            if refused is not None:
                return refused
        else:
            if callback.status == CallbackStatus.DONE:
                messages.success(request, _("Callback completed with its checklist; its task is done."))
            else:
                messages.success(
                    request,
                    _("Call recorded: %(status)s, due again on %(due)s.")
                    % {"status": callback.get_status_display(), "due": callback.due.isoformat()},
                )
            return _back_to(client, "callbacks-heading")
    return _client_page(request, client, callback_forms={callback.pk: form.mark_errors()}, status=400)


@login_required
@require_POST
def client_complaint_open(request: HttpRequest, client_no: str) -> HttpResponse:
    """Record a complaint (feedback.services.complaint_open: the SLA due times are stamped)."""
    client = _actable_client(request, client_no)
    form = workspace_forms.ComplaintForm(request.POST, prefix="complaint")
    if form.is_valid():
        try:
            complaint = feedback_services.complaint_open(client=client, by=request.user, **form.cleaned_data)
        except feedback_services.FeedbackError as exc:
            refused = _refused(
                request, form, str(exc), _error_field(str(exc)), _client_url(client, "complaints-heading")
            )
            if refused is not None:
                return refused
        else:
            messages.success(request, _("Complaint %(reference)s recorded.") % {"reference": complaint.reference})
            return _back_to(client, "complaints-heading")
    return _client_page(request, client, forms={"complaint": form.mark_errors()}, status=400)
