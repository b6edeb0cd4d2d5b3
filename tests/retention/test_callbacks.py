"""Regulatory callbacks: the yearly sample (reproducible, dormant excluded), new accounts, the
checklist, retries and escalation, the progress view and the retention period."""

import datetime as dt
import math
from collections.abc import Iterator

import numpy as np
import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from clients.models import Interaction
from retention.work import callbacks
from retention.work.models import Callback, CallbackRetained, CallbackSample, RetentionTask, TaskStatus
from tests.conftest import Cast
from tests.retention.work_books import publish_activity
from tests.segmentation.books import make_clients

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


def api_as(user: object) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def population(cast: Cast) -> dict:
    """39 eligible clients for 2026 (the cast's three among them) plus every kind of ineligible one."""
    cast_clients = [cast.alice_client, cast.bob_client, cast.mike_client]
    eligible = cast_clients + make_clients(30, manager=cast.alice) + make_clients(6, manager=cast.mike)
    opened_2026 = make_clients(3, manager=cast.alice, opened_on=dt.date(2026, 1, 10))
    closed = make_clients(2, manager=cast.alice, closed_on=dt.date(2025, 6, 30))
    dormant = make_clients(2, manager=cast.alice)
    regulatory_dormant = make_clients(2, manager=cast.bob)
    publish_activity(
        dt.date(2026, 3, 1),
        {
            **{client: {} for client in eligible[:10]},
            **{client: {"segment": "dormant"} for client in dormant},
            **{client: {"segment": "potentially_active", "regulatory_dormant": True} for client in regulatory_dormant},
        },
    )
    return {"eligible": eligible, "excluded": opened_2026 + closed + dormant + regulatory_dormant}


def test_the_population_is_open_at_the_previous_year_end_and_not_dormant(population: dict) -> None:
    ids = callbacks.sample_population(year=2026)
    assert list(ids) == sorted(client.pk for client in population["eligible"])


def test_the_sample_is_reproducible_for_a_seed(population: dict) -> None:
    ids = callbacks.sample_population(year=2026)
    first = callbacks.sample_clients(ids, percent=10, seed=20260101)
    again = callbacks.sample_clients(ids[::-1].copy(), percent=10, seed=20260101)  # order of the input is irrelevant
    other = callbacks.sample_clients(ids, percent=10, seed=7)

    assert len(first) == math.ceil(39 * 0.10) == 4
    assert list(first) == list(again)
    expected = np.sort(ids[np.random.default_rng(20260101).choice(39, size=4, replace=False)])
    assert list(first) == list(expected)
    assert list(first) != list(other)
    assert set(first) <= set(ids)


def test_drawing_the_sample_opens_callbacks_and_tasks_once(population: dict, cast: Cast) -> None:
    sample = callbacks.callback_sample_draw(year=2026, seed=42, by=cast.carol, today=dt.date(2026, 2, 1))

    assert (sample.population, sample.sample_size, sample.percent) == (39, 4, 10)
    drawn = Callback.objects.filter(kind="annual_sample", year=2026)
    expected = callbacks.sample_clients(callbacks.sample_population(year=2026), percent=10, seed=42)
    assert sorted(drawn.values_list("client_id", flat=True)) == list(expected)
    assert not drawn.filter(client__in=population["excluded"]).exists()
    for callback in drawn.select_related("task", "client__account_manager"):
        assert callback.task.kind == "callback"
        assert callback.task.assignee == callback.client.account_manager.user
        assert callback.due == dt.date(2026, 2, 1) + dt.timedelta(days=90)
        assert callback.retain_until == dt.date(2029, 2, 1)
    with pytest.raises(callbacks.CallbackError, match="the 2026 sample was already drawn \\(seed 42\\)"):
        callbacks.callback_sample_draw(year=2026, seed=43, by=cast.carol, today=dt.date(2026, 2, 1))
    assert CallbackSample.objects.count() == 1


def test_a_larger_percentage_from_settings(population: dict, settings) -> None:
    settings.RETENTION_CALLBACK_SAMPLE_PERCENT = 25
    sample = callbacks.callback_sample_draw(year=2026, seed=1, by=None, today=dt.date(2026, 2, 1))
    assert sample.sample_size == 10  # ceil(39 x 25%)


def test_new_accounts_get_a_callback_within_a_month_once(cast: Cast) -> None:
    as_of = dt.date(2026, 11, 20)
    fresh = make_clients(1, manager=cast.bob, opened_on=as_of - dt.timedelta(days=3))[0]
    make_clients(1, manager=cast.bob, opened_on=as_of - dt.timedelta(days=45))

    assert callbacks.new_account_callbacks_open(as_of=as_of) == 1
    assert callbacks.new_account_callbacks_open(as_of=as_of) == 0
    assert callbacks.new_account_callbacks_open(as_of=as_of + dt.timedelta(days=1)) == 0

    callback = Callback.objects.get()
    assert (callback.client, callback.kind, callback.year) == (fresh, "new_account", 2026)
    assert callback.due == fresh.opened_on + dt.timedelta(days=30)
    assert callback.task.assignee == cast.bob.user
    assert RetentionTask.objects.filter(kind="callback").count() == 1


@pytest.fixture
def callback(cast: Cast) -> Callback:
    client = make_clients(1, manager=cast.alice, opened_on=dt.date(2026, 11, 18))[0]
    callbacks.new_account_callbacks_open(as_of=dt.date(2026, 11, 20))
    return Callback.objects.get(client=client)


def test_failed_and_unreachable_calls_are_retried_then_escalated(callback: Callback, cast: Cast, settings) -> None:
    settings.RETENTION_CALLBACK_MAX_ATTEMPTS = 3
    alice = cast.alice.user
    callbacks.callback_attempt_record(callback=callback, by=alice, result="unreachable")
    callback.refresh_from_db()
    assert (callback.status, callback.attempts) == ("retry", 1)
    callbacks.callback_attempt_record(callback=callback, by=alice, result="failed", notes="Hung up")
    callbacks.callback_attempt_record(callback=callback, by=alice, result="unreachable")

    callback.refresh_from_db()
    assert (callback.status, callback.attempts, callback.escalated_to) == ("escalated", 3, cast.tina)
    task = RetentionTask.objects.get(pk=callback.task_id)
    assert task.status == TaskStatus.OPEN
    assert (task.assignee, task.priority) == (cast.tina, 90)
    assert list(callback.attempt_log.values_list("number", "result")) == [
        (1, "unreachable"),
        (2, "failed"),
        (3, "unreachable"),
    ]
    assert Interaction.objects.filter(client=callback.client).count() == 3


def test_completing_needs_the_whole_checklist_and_findings_go_to_the_team_lead(callback: Callback, cast: Cast) -> None:
    with pytest.raises(callbacks.CallbackError) as error:
        callbacks.callback_attempt_record(
            callback=callback, by=cast.alice.user, result="completed", identity_confirmed=True
        )
    assert str(error.value) == (
        "A completed callback needs every checklist item answered; missing: "
        "no_unauthorised_staff_trading, risk_disclosure_understood, satisfaction."
    )

    callbacks.callback_attempt_record(
        callback=callback,
        by=cast.alice.user,
        result="completed",
        identity_confirmed=True,
        no_unauthorised_staff_trading=False,
        risk_disclosure_understood=True,
        satisfaction=4,
    )

    callback.refresh_from_db()
    assert callback.status == "done"
    assert callback.completed_by == cast.alice.user
    task = RetentionTask.objects.get(pk=callback.task_id)
    assert task.status == TaskStatus.DONE
    assert task.interaction.summary.startswith("Callback: Regulatory callback")
    finding = RetentionTask.objects.get(reason_code="callback_finding")
    assert finding.assignee == cast.tina
    assert finding.reason_text == (
        "Regulatory callback finding: client reports trading by staff without authorisation."
    )
    with pytest.raises(callbacks.CallbackError, match="already done"):
        callbacks.callback_attempt_record(callback=callback, by=cast.alice.user, result="failed")


def test_a_callback_task_is_not_completed_without_the_checklist(callback: Callback, cast: Cast) -> None:
    response = api_as(cast.alice.user).post(
        f"/api/v1/retention/tasks/{callback.task_id}/complete/", {"channel": "phone", "outcome": "ok"}, format="json"
    )
    assert response.status_code == 400
    assert "record the callback" in response.json()["detail"]


def test_records_are_kept_for_the_retention_period(callback: Callback, settings) -> None:
    with pytest.raises(CallbackRetained):
        callback.delete()
    with pytest.raises(CallbackRetained):
        Callback.objects.all().delete()
    assert callbacks.callbacks_purge(today=dt.date(2026, 11, 21)) == 0
    settings.RETENTION_CALLBACK_RETENTION_YEARS = 2
    with pytest.raises(Exception, match="RETENTION_CALLBACK_RETENTION_YEARS must be a whole number of at least 3"):
        callbacks.retain_until(dt.date(2026, 1, 1))

    Callback.objects.filter(pk=callback.pk).update(retain_until=dt.date(2020, 1, 1), created_on=dt.date(2017, 1, 1))
    assert callbacks.callbacks_purge(today=dt.date(2026, 11, 21)) == 1
    assert not Callback.objects.exists()


def test_the_api_scope_attempts_and_progress(population: dict, cast: Cast) -> None:
    callbacks.callback_sample_draw(year=2026, seed=5, by=cast.carol, today=dt.date(2026, 2, 1))
    mine = api_as(cast.alice.user).get("/api/v1/retention/callbacks/").json()["results"]
    assert {row["account_manager"] for row in mine} <= {cast.alice.employee_no}
    everyone = api_as(cast.carol).get("/api/v1/retention/callbacks/?kind=annual_sample").json()["results"]
    assert len(everyone) == 4

    target = Callback.objects.filter(kind="annual_sample").select_related("client__account_manager__user").first()
    owner = api_as(target.client.account_manager.user)
    url = f"/api/v1/retention/callbacks/{target.pk}/attempts/"
    assert owner.post(url, {"result": "completed", "satisfaction": 6}, format="json").status_code == 400
    answers = {
        "result": "completed",
        "identity_confirmed": True,
        "no_unauthorised_staff_trading": True,
        "risk_disclosure_understood": True,
        "satisfaction": 5,
    }
    done = owner.post(url, answers, format="json")
    assert done.status_code == 200, done.content
    assert done.json()["status"] == "done"

    assert api_as(cast.alice.user).get("/api/v1/retention/callbacks/progress/").status_code == 403
    progress = api_as(cast.carol).get("/api/v1/retention/callbacks/progress/?year=2026")
    assert progress.status_code == 200
    body = progress.json()
    assert body["sample"]["sample_size"] == 4
    assert body["annual_sample"]["quota"] == 4
    assert body["annual_sample"]["done"] == 1
    assert body["annual_sample"]["done_share"] == 0.25
    assert body["new_account"]["quota"] == 3  # the three opened in 2026, none called yet
    assert body["new_account"]["done"] == 0
    assert api_as(cast.carol).get("/api/v1/retention/callbacks/progress/?year=soon").status_code == 400

    # drawing: compliance and ops only, once a year
    drawn = api_as(cast.olga).post("/api/v1/retention/callbacks/samples/", {"year": 2025, "seed": 1}, format="json")
    assert drawn.status_code == 201, drawn.content
    assert drawn.json()["year"] == 2025
    again = api_as(cast.carol).post("/api/v1/retention/callbacks/samples/", {"year": 2025, "seed": 2}, format="json")
    assert again.status_code == 400
    assert (
        api_as(cast.alice.user)
        .post("/api/v1/retention/callbacks/samples/", {"year": 2025, "seed": 1}, format="json")
        .status_code
        == 403
    )


def test_the_callback_list_costs_the_same_queries_for_3_and_30_rows(cast: Cast, django_assert_num_queries) -> None:
    as_of = dt.date(2026, 11, 20)
    api = api_as(cast.tina)
    make_clients(3, manager=cast.alice, opened_on=as_of)
    callbacks.new_account_callbacks_open(as_of=as_of)
    api.get("/api/v1/retention/callbacks/")
    with django_assert_num_queries(4) as few:  # session, user, roles, page
        assert len(api.get("/api/v1/retention/callbacks/").json()["results"]) == 3
    make_clients(27, manager=cast.bob, opened_on=as_of)
    callbacks.new_account_callbacks_open(as_of=as_of)
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(api.get("/api/v1/retention/callbacks/").json()["results"]) == 30


def test_an_escalated_callback_is_the_team_leads_to_call(callback: Callback, cast: Cast, settings) -> None:
    settings.RETENTION_CALLBACK_MAX_ATTEMPTS = 1
    callbacks.callback_attempt_record(callback=callback, by=cast.alice.user, result="unreachable")
    url = f"/api/v1/retention/callbacks/{callback.pk}/attempts/"
    assert api_as(cast.alice.user).post(url, {"result": "unreachable"}, format="json").status_code == 403
    response = api_as(cast.tina).post(url, {"result": "unreachable"}, format="json")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["attempts"]) == ("escalated", 2)


def test_the_nightly_run_draws_the_years_sample_once_if_compliance_has_not(population: dict) -> None:
    from brokercrm.nightly.registry import StageContext

    ctx = StageContext(run_id=1, attempt=1, stage_run_id=1, stage="callbacks", as_of=dt.date(2026, 11, 20))
    first = callbacks.callbacks_stage(ctx)
    second = callbacks.callbacks_stage(ctx)

    sample = CallbackSample.objects.get()
    assert (sample.year, sample.seed, sample.drawn_by) == (2026, callbacks.default_seed(2026), None)
    assert first.detail["sample_drawn"] == {"year": 2026, "seed": sample.seed, "size": 4}
    assert "sample_drawn" not in second.detail
    # the year's progress as of the working day, stored for the management dashboard
    progress = second.detail["progress"]
    assert (progress["year"], progress["as_of"]) == (2026, "2026-11-21")
    assert progress["sample"] == {"sample_size": 4, "population": sample.population, "percent": 10}
    assert (progress["annual_sample"]["quota"], progress["annual_sample"]["pending"]) == (4, 4)
    live = callbacks.callback_progress(year=2026, today=dt.date(2026, 11, 21))
    assert progress["new_account"] == live["new_account"]
    drawn = Callback.objects.filter(kind="annual_sample")
    assert sorted(drawn.values_list("client_id", flat=True)) == list(
        callbacks.sample_clients(callbacks.sample_population(year=2026), percent=10, seed=callbacks.default_seed(2026))
    )
    assert set(drawn.values_list("due", flat=True)) == {dt.date(2026, 12, 31)}  # 90 days would pass the year-end


def test_no_automatic_draw_when_switched_off(population: dict, settings) -> None:
    from brokercrm.nightly.registry import StageContext

    settings.RETENTION_CALLBACK_SAMPLE_AUTO = False
    ctx = StageContext(run_id=1, attempt=1, stage_run_id=1, stage="callbacks", as_of=dt.date(2026, 11, 20))
    assert "sample_drawn" not in callbacks.callbacks_stage(ctx).detail
    assert not CallbackSample.objects.exists()
