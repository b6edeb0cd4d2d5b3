"""Regulatory callbacks (回访): new accounts within a month of opening, a yearly random sample.

- New accounts: the nightly stage gives every client opened in the last
  RETENTION_CALLBACK_NEW_ACCOUNT_DAYS days (and not given one yet) a callback due that many
  days after opening, with a callback task for the account manager.
- Yearly sample: compliance draws, once per year, ceil(p% x N) clients (p >= 10) out of the N
  clients open at the previous year-end, excluding dormant accounts (activity segment dormant
  or the regulator's dormant flag in the published activity results) and accounts closed since.
  The draw is `numpy.random.default_rng(seed).choice` over the sorted client ids: the same
  population and seed give exactly the same sample. If compliance has not drawn the year's sample,
  the nightly run does, with a seed derived from the year (RETENTION_CALLBACK_SAMPLE_AUTO).
- An attempt is completed (the whole checklist answered), unreachable or failed. A failed or
  unreachable callback is due again RETENTION_CALLBACK_RETRY_DAYS later; after
  RETENTION_CALLBACK_MAX_ATTEMPTS attempts it is escalated to the team lead.
- Records are kept RETENTION_CALLBACK_RETENTION_YEARS (>= 3) years: deletion is refused before.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from brokercrm.nightly import StageContext, StageResult
from clients.models import Client, Interaction
from retention import services
from retention.work import conf, task_reasons
from retention.work.facts import queryset_frame
from retention.work.models import (
    Callback,
    CallbackAttempt,
    CallbackKind,
    CallbackResult,
    CallbackSample,
    CallbackStatus,
    RetentionTask,
    TaskKind,
    TaskSource,
    TaskStatus,
)
from segmentation.models import ResultSet

CHECKLIST = ("identity_confirmed", "no_unauthorised_staff_trading", "risk_disclosure_understood", "satisfaction")
ESCALATED_PRIORITY = 90


class CallbackError(ValueError):
    ALREADY_DONE = "status: this callback is already done."
    CHECKLIST_INCOMPLETE = "A completed callback needs every checklist item answered; missing: {fields}."
    SAMPLE_EXISTS = "year: the {year} sample was already drawn (seed {seed}); a year is sampled once."
    YEAR_IN_FUTURE = "year: the sample of {year} cannot be drawn before {year} starts."


def add_years(day: dt.date, years: int) -> dt.date:
    """`day` plus whole years (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def retain_until(created_on: dt.date) -> dt.date:
    return add_years(created_on, conf.callback_retention_years())


# --- the sample ------------------------------------------------------------------------------


def sample_population(*, year: int) -> np.ndarray:
    """Sorted ids of the clients open at the end of `year - 1`, not closed since, not dormant."""
    from retention.models import ActivitySegment, ClientActivity

    year_end = dt.date(year - 1, 12, 31)
    open_ids = queryset_frame(
        Client.objects.open_on(year_end).exclude(status=Client.Status.CLOSED).order_by("id"), ["id"]
    )["id"].to_numpy(dtype="int64")
    generation = (
        ResultSet.objects.filter(kind=ResultSet.Kind.ACTIVITY, is_published=True)
        .order_by("-as_of")
        .values_list("generation", flat=True)
        .first()
    )
    if generation is None:
        dormant = np.array([], dtype="int64")
    else:
        dormant = queryset_frame(
            ClientActivity.objects.filter(generation=generation).filter(
                Q(segment=ActivitySegment.DORMANT) | Q(regulatory_dormant=True)
            ),
            ["client_id"],
        )["client_id"].to_numpy(dtype="int64")
    return np.sort(np.setdiff1d(open_ids, dormant))


def sample_clients(population: np.ndarray, *, percent: int, seed: int) -> np.ndarray:
    """ceil(percent% of the population) ids drawn without replacement by default_rng(seed) over
    the sorted ids; returned sorted. The same population and seed always give the same ids."""
    ids = np.sort(np.asarray(population, dtype="int64"))
    size = math.ceil(len(ids) * percent / 100)
    if size == 0:
        return ids[:0]
    chosen = np.random.default_rng(seed).choice(len(ids), size=size, replace=False)
    return np.sort(ids[chosen])


def _open_callbacks(
    *,
    client_ids: list[int],
    kind: str,
    year: int,
    due_by_client: dict[int, dt.date],
    today: dt.date,
    sample: CallbackSample | None = None,
) -> int:
    """Bulk-create callbacks (and their tasks) for clients without one of this kind and year."""
    existing: set[int] = set()
    managers: dict[int, int | None] = {}
    for start in range(0, len(client_ids), 10_000):
        part = client_ids[start : start + 10_000]
        existing.update(
            Callback.objects.filter(kind=kind, year=year, client_id__in=part).values_list("client_id", flat=True)
        )
        managers.update(Client.objects.filter(pk__in=part).values_list("pk", "account_manager__user_id"))
    wanted = [cid for cid in client_ids if cid not in existing]
    if not wanted:
        return 0
    facts = task_reasons.callback_facts(kind)
    reason_text = task_reasons.stored_text(facts)
    now = timezone.now()
    with transaction.atomic():
        tasks = RetentionTask.objects.bulk_create(
            [
                RetentionTask(
                    client_id=cid,
                    kind=TaskKind.CALLBACK,
                    assignee_id=managers.get(cid),
                    due=due_by_client[cid],
                    priority=70,
                    source=TaskSource.CALLBACK,
                    reason_code=f"callback_{kind}",
                    reason_text=reason_text,
                    reason_facts=facts,
                    dedupe_key=f"callback:{kind}:{year}:client:{cid}",
                    created_on=today,
                    created_at=now,
                )
                for cid in wanted
            ],
            batch_size=5000,
        )
        Callback.objects.bulk_create(
            [
                Callback(
                    client_id=task.client_id,
                    kind=kind,
                    year=year,
                    sample=sample,
                    due=task.due,
                    task_id=task.pk,
                    created_on=today,
                    retain_until=retain_until(today),
                )
                for task in tasks
            ],
            batch_size=5000,
        )
    return len(wanted)


def callback_sample_draw(
    *, year: int, seed: int, by: AbstractBaseUser | None, today: dt.date | None = None
) -> CallbackSample:
    """Draw `year`'s sample once, open its callbacks and tasks, and keep the draw on record."""
    today = today or timezone.localdate()
    if year > today.year:
        raise CallbackError(CallbackError.YEAR_IN_FUTURE.format(year=year))
    existing = CallbackSample.objects.filter(year=year).first()
    if existing is not None:
        raise CallbackError(CallbackError.SAMPLE_EXISTS.format(year=year, seed=existing.seed))
    percent = conf.callback_sample_percent()
    population = sample_population(year=year)
    chosen = sample_clients(population, percent=percent, seed=seed)
    # Due within the configured days, and within the sampling year: the quota is a yearly one.
    due = min(today + dt.timedelta(days=conf.callback_sample_due_days()), dt.date(year, 12, 31))
    with transaction.atomic():
        sample = CallbackSample.objects.create(
            year=year,
            seed=seed,
            percent=percent,
            population=len(population),
            sample_size=len(chosen),
            drawn_on=today,
            drawn_by=by,
        )
        ids = [int(cid) for cid in chosen]
        _open_callbacks(
            client_ids=ids,
            kind=CallbackKind.ANNUAL_SAMPLE,
            year=year,
            due_by_client=dict.fromkeys(ids, due),
            today=today,
            sample=sample,
        )
    return sample


# --- new accounts (nightly) -------------------------------------------------------------------


def new_account_callbacks_open(*, as_of: dt.date) -> int:
    """Callbacks for the clients opened in the last month up to `as_of` that have none yet."""
    days = conf.callback_new_account_days()
    opened = list(
        Client.objects.filter(opened_on__gt=as_of - dt.timedelta(days=days), opened_on__lte=as_of)
        .exclude(status=Client.Status.CLOSED)
        .values_list("pk", "opened_on")
    )
    created = 0
    by_year: dict[int, list[tuple[int, dt.date]]] = {}
    for pk, opened_on in opened:
        by_year.setdefault(opened_on.year, []).append((pk, opened_on))
    for year, rows in by_year.items():
        created += _open_callbacks(
            client_ids=[pk for pk, _ in rows],
            kind=CallbackKind.NEW_ACCOUNT,
            year=year,
            due_by_client={pk: opened_on + dt.timedelta(days=days) for pk, opened_on in rows},
            today=as_of + dt.timedelta(days=1),
        )
    return created


def default_seed(year: int) -> int:
    """The seed of a sample the nightly run draws by itself: derived from the year, so anyone can
    redraw it (62 bits, to fit the column)."""
    digest = hashlib.sha256(f"brokercrm-callback-sample-{year}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 2


def callbacks_stage(ctx: StageContext) -> StageResult:
    workday = ctx.as_of + dt.timedelta(days=1)
    created = new_account_callbacks_open(as_of=ctx.as_of)
    detail: dict = {"new_account_callbacks": created}
    year = workday.year
    if conf.callback_sample_auto() and not CallbackSample.objects.filter(year=year).exists():
        sample = callback_sample_draw(year=year, seed=default_seed(year), by=None, today=workday)
        detail["sample_drawn"] = {"year": year, "seed": sample.seed, "size": sample.sample_size}
        created += sample.sample_size
    detail["purged"] = callbacks_purge(today=workday)
    # The management dashboard reads the year's progress from here (a stored nightly result)
    # instead of counting every callback of the year on each request.
    detail["progress"] = progress_json(callback_progress(year=year, today=workday))
    return StageResult(rows=created, detail=detail)


# --- attempts -----------------------------------------------------------------------------------


def callback_attempt_record(
    *,
    callback: Callback,
    by: AbstractBaseUser,
    result: str,
    channel: str = Interaction.Channel.PHONE,
    identity_confirmed: bool | None = None,
    no_unauthorised_staff_trading: bool | None = None,
    risk_disclosure_understood: bool | None = None,
    satisfaction: int | None = None,
    notes: str = "",
) -> Callback:
    """Record one call. Completed: the checklist is stored, the callback and its task are done (an
    interaction is recorded) and a problem found (identity not confirmed, unauthorised trading,
    disclosure not understood, satisfaction 1-2) opens a follow-up for the team lead. Unreachable or
    failed: retried after RETENTION_CALLBACK_RETRY_DAYS, escalated to the team lead after the last attempt."""
    if callback.status == CallbackStatus.DONE:
        raise CallbackError(CallbackError.ALREADY_DONE)
    answers = {
        "identity_confirmed": identity_confirmed,
        "no_unauthorised_staff_trading": no_unauthorised_staff_trading,
        "risk_disclosure_understood": risk_disclosure_understood,
        "satisfaction": satisfaction,
    }
    if result == CallbackResult.COMPLETED:
        missing = [name for name in CHECKLIST if answers[name] is None]
        if missing:
            raise CallbackError(CallbackError.CHECKLIST_INCOMPLETE.format(fields=", ".join(missing)))
    today = timezone.localdate()
    with transaction.atomic():
        callback = (
            Callback.objects.select_for_update(of=("self",))
            .select_related("client__account_manager__team", "task")
            .get(pk=callback.pk)
        )
        if callback.status == CallbackStatus.DONE:
            raise CallbackError(CallbackError.ALREADY_DONE)
        number = callback.attempts + 1
        task = callback.task
        interaction = None
        if result == CallbackResult.COMPLETED:
            if task is not None and task.status == TaskStatus.OPEN:
                services.task_complete(
                    task=task, by=by, channel=channel, outcome="Callback completed", notes=notes, allow_callback=True
                )
                interaction = task.interaction
            else:
                interaction = _interaction(callback, by=by, channel=channel, outcome="Callback completed", notes=notes)
            for name, value in answers.items():
                setattr(callback, name, value)
            callback.status = CallbackStatus.DONE
            callback.completed_at = timezone.now()
            callback.completed_by = by
        else:
            interaction = _interaction(
                callback, by=by, channel=channel, outcome=CallbackResult(result).label, notes=notes
            )
            retry_due = today + dt.timedelta(days=conf.callback_retry_days())
            callback.due = retry_due
            if number >= conf.callback_max_attempts():
                callback.status = CallbackStatus.ESCALATED
                if callback.escalated_at is None:
                    callback.escalated_at = timezone.now()
                    callback.escalated_to = _team_lead(callback.client)
            elif callback.status != CallbackStatus.ESCALATED:
                callback.status = CallbackStatus.RETRY
            if task is not None and task.status == TaskStatus.OPEN:
                fields = {"due": retry_due}
                if callback.status == CallbackStatus.ESCALATED:
                    fields["priority"] = max(task.priority, ESCALATED_PRIORITY)
                    if callback.escalated_to is not None:
                        fields["assignee"] = callback.escalated_to
                RetentionTask.objects.filter(pk=task.pk).update(**fields)
        callback.attempts = number
        if notes:
            callback.notes = f"{callback.notes}\n{notes}".strip()
        callback.save()
        CallbackAttempt.objects.create(
            callback=callback, number=number, result=result, notes=notes, by=by, interaction=interaction
        )
        if result == CallbackResult.COMPLETED:
            _follow_up_findings(callback, answers)
    return callback


def _interaction(callback: Callback, *, by: AbstractBaseUser, channel: str, outcome: str, notes: str) -> Interaction:
    return Interaction.objects.create(
        client_id=callback.client_id,
        channel=channel,
        direction=Interaction.Direction.OUTBOUND,
        summary=f"Regulatory callback ({callback.get_kind_display()})" + (f"\n{notes}" if notes else ""),
        outcome=outcome[:200],
        occurred_at=timezone.now(),
        by=by,
    )


def _team_lead(client: Client) -> AbstractBaseUser | None:
    manager = client.account_manager
    return manager.team.lead if manager is not None else None


def _follow_up_findings(callback: Callback, answers: dict) -> None:
    findings = []
    if answers["identity_confirmed"] is False:
        findings.append("identity")
    if answers["no_unauthorised_staff_trading"] is False:
        findings.append("staff_trading")
    if answers["risk_disclosure_understood"] is False:
        findings.append("risk_disclosure")
    low = answers["satisfaction"] is not None and answers["satisfaction"] <= 2
    if not findings and not low:
        return
    facts = task_reasons.finding_facts(findings, answers["satisfaction"] if low else None)
    lead = _team_lead(callback.client)
    services.open_task(
        client=callback.client,
        kind=TaskKind.OTHER,
        reason_code="callback_finding",
        reason_text=task_reasons.stored_text(facts),
        reason_facts=facts,
        due=timezone.localdate() + dt.timedelta(days=1),
        priority=95,
        source=TaskSource.CALLBACK,
        assignee=lead,
        dedupe_key=f"callback-finding:{callback.pk}",
    )


# --- progress and retention ---------------------------------------------------------------------


def _part(queryset, quota: int, today: dt.date) -> dict:
    counts = queryset.aggregate(
        done=Count("id", filter=Q(status=CallbackStatus.DONE)),
        pending=Count("id", filter=Q(status=CallbackStatus.PENDING)),
        retry=Count("id", filter=Q(status=CallbackStatus.RETRY)),
        escalated=Count("id", filter=Q(status=CallbackStatus.ESCALATED)),
        overdue=Count("id", filter=~Q(status=CallbackStatus.DONE) & Q(due__lt=today)),
    )
    return {"quota": quota, **counts, "done_share": round(counts["done"] / quota, 4) if quota else None}


def callback_progress(*, year: int, today: dt.date) -> dict:
    """The year's quotas and how much is done: the annual sample (quota: the sample size) and the
    new accounts opened in the year up to today (quota: one callback each)."""
    sample = CallbackSample.objects.filter(year=year).first()
    new_accounts = Client.objects.filter(opened_on__year=year, opened_on__lte=today).count()
    return {
        "year": year,
        "as_of": today,
        "sample": sample,
        "annual_sample": _part(
            Callback.objects.filter(kind=CallbackKind.ANNUAL_SAMPLE, year=year),
            sample.sample_size if sample else 0,
            today,
        ),
        "new_account": _part(Callback.objects.filter(kind=CallbackKind.NEW_ACCOUNT, year=year), new_accounts, today),
    }


def progress_json(progress: dict) -> dict:
    """callback_progress() as JSON (the callbacks stage stores it with its run)."""
    sample = progress["sample"]
    return {
        **progress,
        "as_of": progress["as_of"].isoformat(),
        "sample": None
        if sample is None
        else {"sample_size": sample.sample_size, "population": sample.population, "percent": sample.percent},
    }


def published_callback_progress() -> dict | None:
    """The callback progress stored by the last successful callbacks stage (as of the working
    day after its night), or None before the first one. One query, whatever the book size."""
    from brokercrm.models import RunStatus, StageRun

    detail = (
        StageRun.objects.filter(name="callbacks", status=RunStatus.SUCCEEDED, detail__has_key="progress")
        .order_by("-run__as_of", "-attempt")
        .values_list("detail", flat=True)
        .first()
    )
    if not detail:
        return None
    progress = dict(detail["progress"])
    progress["as_of"] = dt.date.fromisoformat(progress["as_of"])
    return progress


def callbacks_purge(*, today: dt.date) -> int:
    """Delete callback records past their retention date; returns how many."""
    # Never past the real date: the records' own guard refuses anything still retained today.
    expired = Callback.objects.filter(retain_until__lt=min(today, timezone.localdate()))
    count = expired.count()
    if count:
        CallbackAttempt.objects.filter(callback__in=expired).delete()
        expired.delete()
    return count
