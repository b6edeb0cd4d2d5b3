"""Compliance pages: the review queue with filters and take-next, a flag with its evidence and
the client's context, decisions with four eyes, and a client's audit trail.

Who sees what (brokercrm.policy decides the clients; compliance.selectors the shapes):
- compliance officers: everything here; every write goes through compliance.services;
- account managers and team leads: that flags exist on the clients in their scope (kind,
  severity, status, dates), never evidence, decisions or an unmasked ID number;
- anyone else: 403. A flag or client outside the user's scope: 404.

Each page makes a fixed number of queries whatever the number of flags (pinned by tests).
The ID number is shown masked here, so viewing a page writes nothing to the audit trail.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST, require_safe

from brokercrm.policy import get_visible_or_404
from brokercrm.roles import ACCOUNT_MANAGER, TEAM_LEAD, has_role
from clients.models import Branch, Client, RiskAssessment
from compliance import selectors, services
from compliance.evidence import rows as evidence_rows
from compliance.models import (
    ACTIVE_STATUSES,
    SEVERITY_CODES,
    AuditEntry,
    Decision,
    Flag,
    FlagDecision,
    FlagKind,
    FlagStatus,
    ScreeningMatch,
    Severity,
)

PAGE_SIZE = 50
COUNT_CAP = 1000


@dataclass(frozen=True)
class CappedCount:
    """A count that stopped at COUNT_CAP: `value`, and `more` when there are more than that."""

    value: int
    more: bool

    def __str__(self) -> str:
        return f"{intcomma(self.value)}+" if self.more else intcomma(self.value)


def _capped_count(queryset: QuerySet) -> CappedCount:
    """COUNT(*) over at most COUNT_CAP + 1 rows (a LIMITed sub-select)."""
    found = queryset.order_by()[: COUNT_CAP + 1].count()
    return CappedCount(min(found, COUNT_CAP), found > COUNT_CAP)


class CappedPaginator(Paginator):
    """Pages of a queue whose length is only counted up to COUNT_CAP: the pages after the
    cap are not offered (the queue is worked from its top); `capped` says the list is longer."""

    @cached_property
    def count(self) -> int:
        found = self.object_list.order_by()[: COUNT_CAP + 1].count()
        self.capped = found > COUNT_CAP
        return min(found, COUNT_CAP)


CLIENT_FLAGS = 20
RECENT_AUDIT = 10
AUDIT_PAGE_SIZE = 50

SEVERITY_CHOICES = [("", gettext_lazy("Any severity"))] + [
    (code, Severity(value).label) for code, value in SEVERITY_CODES.items()
]


def _role(user: object) -> str:
    """'officer', 'scope' (account manager / team lead: that flags exist) or PermissionDenied."""
    if selectors.is_officer(user):
        return "officer"
    if has_role(user, ACCOUNT_MANAGER, TEAM_LEAD):
        return "scope"
    raise PermissionDenied


def _officer_only(user: object) -> None:
    if not selectors.is_officer(user):
        raise PermissionDenied


# --- Forms -------------------------------------------------------------------------------------


class QueueFilterForm(forms.Form):
    VIEWS = (
        ("queue", gettext_lazy("Waiting in the queue")),
        ("mine", gettext_lazy("In review by me")),
        ("pending", gettext_lazy("Waiting for a second officer")),
        ("active", gettext_lazy("All active flags")),
    )

    view = forms.ChoiceField(label=gettext_lazy("Show"), choices=VIEWS, required=False)
    kind = forms.ChoiceField(
        label=gettext_lazy("Kind"), choices=[("", gettext_lazy("Any kind")), *FlagKind.choices], required=False
    )
    severity = forms.ChoiceField(label=gettext_lazy("Severity"), choices=SEVERITY_CHOICES, required=False)
    branch = forms.ChoiceField(label=gettext_lazy("Branch"), required=False)
    client_no = forms.CharField(label=gettext_lazy("Client no."), max_length=32, required=False)

    def __init__(self, *args: Any, branches: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["branch"].choices = [("", _("Any branch")), *branches]

    def values(self) -> dict[str, str]:
        """The valid filters (an invalid one is dropped and reported by the form)."""
        if self.is_bound:
            self.is_valid()
        data = getattr(self, "cleaned_data", {})
        values = {name: (data.get(name) or "").strip() for name in self.fields}
        values["view"] = values["view"] or "queue"
        return values


class TakeNextForm(forms.Form):
    kind = forms.ChoiceField(choices=[("", ""), *FlagKind.choices], required=False)
    severity = forms.ChoiceField(choices=SEVERITY_CHOICES, required=False)
    branch = forms.CharField(max_length=16, required=False)


class DecideForm(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "decide_%s")  # three forms on one page: distinct ids
        super().__init__(*args, **kwargs)

    decision = forms.ChoiceField(
        label=gettext_lazy("Decision"),
        choices=Decision.choices,
        widget=forms.RadioSelect,
        error_messages={"required": gettext_lazy("Choose clear, escalate or restrict.")},
    )
    note = forms.CharField(
        label=gettext_lazy("Note (why)"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={"required": gettext_lazy("A decision needs a note: say why.")},
    )
    whitelist = forms.BooleanField(
        label=gettext_lazy("Confirmed false match: never flag this watch-list entry again for this client"),
        required=False,
    )


class ApproveForm(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "approve_%s")  # three forms on one page: distinct ids
        super().__init__(*args, **kwargs)

    note = forms.CharField(
        label=gettext_lazy("Approval note (optional)"),
        max_length=4000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class RejectForm(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "reject_%s")  # three forms on one page: distinct ids
        super().__init__(*args, **kwargs)

    note = forms.CharField(
        label=gettext_lazy("Why the decision is rejected"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": gettext_lazy("Rejecting needs a note: say why.")},
    )


# --- Queue -------------------------------------------------------------------------------------


def _branches() -> list[tuple[str, str]]:
    return [(code, f"{code} {name}") for code, name in Branch.objects.order_by("code").values_list("code", "name")]


@login_required
@require_safe
def queue(request: HttpRequest) -> HttpResponse:
    """Officers: the queue (filters: view, kind, severity, branch, client no.), counts and
    take-next. Account managers and team leads: the active flags on their clients.

    Queries: the branches (officers), one for the counts, one for the page count, one for
    the page rows (client, branch and assignee joined; pending approval as EXISTS)."""
    role = _role(request.user)
    flags = selectors.flag_list(request.user)
    if role == "scope":
        rows = flags.filter(status__in=ACTIVE_STATUSES).queue_order()
        page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
        return render(request, "compliance/my_clients_flags.html", {"page": page})

    form = QueueFilterForm(request.GET or None, branches=_branches())
    values = form.values()
    waiting = Q(status__in=[FlagStatus.OPEN, FlagStatus.ESCALATED], assigned_to__isnull=True)
    # Each count stops at COUNT_CAP (shown as "1,000+"): an officer works the queue from its
    # top, and counting every active flag on each request (257,403 on the 1M-client book) made
    # the page 3.6x slower there than on the demo book (bench/page_bench.py). Each count reads
    # at most COUNT_CAP + 1 index entries.
    active = Flag.objects.filter(status__in=ACTIVE_STATUSES)
    pending_ids = FlagDecision.objects.filter(status=FlagDecision.Status.PENDING).values("flag_id")
    counts = {
        "waiting": _capped_count(active.filter(waiting)),
        "mine": _capped_count(active.filter(assigned_to=request.user)),
        "pending": _capped_count(active.filter(pk__in=pending_ids)),
        "high": _capped_count(active.filter(severity=Severity.HIGH)),
    }
    view = values["view"]
    if view == "queue":
        rows = flags.filter(waiting)
    elif view == "mine":
        rows = flags.filter(status__in=ACTIVE_STATUSES, assigned_to=request.user)
    elif view == "pending":
        rows = flags.filter(pending_approval=True)
    else:
        rows = flags.filter(status__in=ACTIVE_STATUSES)
    if values["kind"]:
        rows = rows.filter(kind=values["kind"])
    if values["severity"]:
        rows = rows.filter(severity=SEVERITY_CODES[values["severity"]])
    if values["branch"]:
        rows = rows.filter(client__branch__code=values["branch"])
    if values["client_no"]:
        rows = rows.filter(client__client_no=values["client_no"])
    page = CappedPaginator(rows.queue_order(), PAGE_SIZE).get_page(request.GET.get("page"))
    filtered = any(values[name] for name in ("kind", "severity", "branch", "client_no"))
    context = {
        "form": form,
        "values": values,
        "view_label": dict(QueueFilterForm.VIEWS)[view],
        "views": QueueFilterForm.VIEWS,
        "counts": counts,
        "page": page,
        "total_label": str(CappedCount(page.paginator.count, getattr(page.paginator, "capped", False))),
        "filtered": filtered,
    }
    return render(request, "compliance/queue.html", context)


@login_required
@require_POST
def take_next(request: HttpRequest) -> HttpResponse:
    """Assign the next flag matching the filters to the officer and open it; back to the
    queue with a message when nothing is waiting."""
    _officer_only(request.user)
    form = TakeNextForm(request.POST)
    if not form.is_valid():  # never take an unfiltered flag when the filters were wrong
        messages.error(request, _("The filters are not valid: choose them again."))
        return redirect("compliance-queue")
    data = form.cleaned_data
    flag = services.flag_take_next(
        officer=request.user,
        kind=data.get("kind") or None,
        severity=SEVERITY_CODES.get(data.get("severity") or ""),
        branch=(data.get("branch") or "").strip() or None,
    )
    if flag is None:
        messages.info(request, _("Nothing is waiting in the queue for these filters."))
        query = urlencode({name: value for name, value in data.items() if value})
        return redirect(reverse("compliance-queue") + (f"?{query}" if query else ""))
    messages.success(request, _("Flag #%(id)s is now in review by you.") % {"id": flag.pk})
    return redirect("compliance-flag", pk=flag.pk)


# --- Flag --------------------------------------------------------------------------------------


def _display(value: object) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if value is None or value == "":
        return "—"
    return str(value)


def _evidence(evidence: object) -> list[tuple[str, str]]:
    return evidence_rows(evidence)


def _mark_errors(form: forms.Form) -> forms.Form:
    """Point each field in error at its message (aria-invalid, aria-describedby)."""
    for name in form.errors:
        if name in form.fields:
            bound = form[name]
            form.fields[name].widget.attrs.update(
                {"aria-invalid": "true", "aria-describedby": f"{bound.auto_id}_error"}
            )
    return form


def _flag_page(
    request: HttpRequest,
    pk: int,
    *,
    decide_form: DecideForm | None = None,
    approve_form: ApproveForm | None = None,
    reject_form: RejectForm | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    role = _role(request.user)
    queryset = selectors.flag_detail_queryset(request.user).select_related("client__account_manager__user")
    flag = get_visible_or_404(request.user, queryset, prefix="client__", pk=pk)
    client = flag.client
    if role == "scope":
        return render(request, "compliance/flag_scope.html", {"flag": flag, "client": client}, status=status)

    decisions = list(selectors.flag_decisions(flag))
    pending = next((d for d in decisions if d.status == FlagDecision.Status.PENDING), None)
    user = request.user
    can_decide = (
        flag.is_active and pending is None and flag.assigned_to_id in (None, user.pk)
    )  # the service checks again
    can_review = pending is not None and pending.decided_by_id != user.pk
    match = None
    if flag.subject.startswith("entry:"):
        match = (
            ScreeningMatch.objects.select_related("entry__watch_list")
            .filter(client_id=client.pk, entry_id=flag.subject.split(":", 1)[1])
            .first()
        )
    context = {
        "flag": flag,
        "client": client,
        "kyc": getattr(client, "kyc", None),
        "risk": RiskAssessment.objects.filter(client_id=client.pk).order_by("-assessed_on").first(),
        "evidence": _evidence(flag.evidence),
        "decisions": decisions,
        "pending": pending,
        "can_decide": can_decide,
        "can_review": can_review,
        "whitelistable": flag.subject.startswith("entry:"),
        "match": match,
        "other_flags": list(
            Flag.objects.filter(client_id=client.pk, status__in=ACTIVE_STATUSES)
            .exclude(pk=flag.pk)
            .queue_order()[:CLIENT_FLAGS]
        ),
        "recent_audit": list(AuditEntry.objects.filter(client_id=client.pk).order_by("-seq")[:RECENT_AUDIT]),
        "decide_form": decide_form or DecideForm(),
        "approve_form": approve_form or ApproveForm(),
        "reject_form": reject_form or RejectForm(),
        "error": error,
    }
    return render(request, "compliance/flag.html", context, status=status)


@login_required
@require_safe
def flag_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The flag, its evidence and decisions, the client's context, the decision forms."""
    return _flag_page(request, pk)


def _visible_flag(request: HttpRequest, pk: int) -> Flag:
    _officer_only(request.user)
    return get_visible_or_404(request.user, Flag.objects.all(), prefix="client__", pk=pk)


def _refused(exc: services.ComplianceError) -> int:
    conflicts = (
        services.ComplianceError.TAKEN_BY_OTHER,
        services.ComplianceError.PENDING_APPROVAL,
        services.ComplianceError.NOT_ACTIVE,
        services.ComplianceError.NO_PENDING,
    )
    if str(exc) in conflicts:
        return 409
    if str(exc) == services.ComplianceError.SAME_OFFICER:
        return 403
    return 400


def _service_message(exc: services.ComplianceError) -> str:
    return _(str(exc))


@login_required
@require_POST
def flag_decide(request: HttpRequest, pk: int) -> HttpResponse:
    flag = _visible_flag(request, pk)
    form = DecideForm(request.POST)
    if not form.is_valid():
        return _flag_page(request, pk, decide_form=_mark_errors(form), status=400)
    try:
        result = services.flag_decide(flag=flag, officer=request.user, **form.cleaned_data)
    except services.ComplianceError as exc:
        return _flag_page(request, pk, decide_form=form, error=_service_message(exc), status=_refused(exc))
    if result.applied:
        messages.success(
            request, _("Decision recorded: %(decision)s.") % {"decision": result.decision.get_decision_display()}
        )
    else:
        messages.success(
            request, _("Decision recorded. It waits for a second compliance officer to approve it (four eyes).")
        )
    return redirect("compliance-flag", pk=pk)


@login_required
@require_POST
def flag_approve(request: HttpRequest, pk: int) -> HttpResponse:
    flag = _visible_flag(request, pk)
    form = ApproveForm(request.POST)
    if not form.is_valid():
        return _flag_page(request, pk, approve_form=_mark_errors(form), status=400)
    try:
        result = services.flag_decision_approve(flag=flag, officer=request.user, note=form.cleaned_data["note"])
    except services.ComplianceError as exc:
        return _flag_page(request, pk, approve_form=form, error=_service_message(exc), status=_refused(exc))
    messages.success(
        request,
        _("Approved and applied: %(decision)s. Flag status: %(status)s.")
        % {"decision": result.decision.get_decision_display(), "status": result.flag.get_status_display()},
    )
    return redirect("compliance-flag", pk=pk)


@login_required
@require_POST
def flag_reject(request: HttpRequest, pk: int) -> HttpResponse:
    flag = _visible_flag(request, pk)
    form = RejectForm(request.POST)
    if not form.is_valid():
        return _flag_page(request, pk, reject_form=_mark_errors(form), status=400)
    try:
        services.flag_decision_reject(flag=flag, officer=request.user, note=form.cleaned_data["note"])
    except services.ComplianceError as exc:
        return _flag_page(request, pk, reject_form=form, error=_service_message(exc), status=_refused(exc))
    messages.success(request, _("Decision rejected. The flag is back in the queue."))
    return redirect("compliance-flag", pk=pk)


# --- Audit trail of a client ---------------------------------------------------------------------


def _changes(old: object, new: object) -> list[dict[str, str]]:
    """An entry's old -> new as one row per field that changed (or was set)."""
    old = old if isinstance(old, dict) else ({"value": old} if old is not None else {})
    new = new if isinstance(new, dict) else ({"value": new} if new is not None else {})
    rows = []
    for key in [*old, *(key for key in new if key not in old)]:
        before, after = old.get(key), new.get(key)
        if key in old and key in new and before == after:
            continue
        rows.append(
            {
                "field": str(key),
                "old": _display(before) if key in old else "",
                "new": _display(after) if key in new else "",
                "only_before": key not in new,  # the state before, of another object than the new one
            }
        )
    return rows


@login_required
@require_safe
def client_audit(request: HttpRequest, client_no: str) -> HttpResponse:
    """The client's audit trail, newest first, 50 a page (officers). Queries: the client, the
    page count, the page rows."""
    _officer_only(request.user)
    client = get_visible_or_404(request.user, Client.objects.select_related("branch"), client_no=client_no)
    entries = AuditEntry.objects.filter(client_id=client.pk).order_by("-seq")
    page = Paginator(entries, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [{"entry": entry, "changes": _changes(entry.old, entry.new)} for entry in page.object_list]
    return render(request, "compliance/client_audit.html", {"client": client, "page": page, "rows": rows})
