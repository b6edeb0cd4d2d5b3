"""Complaints: the ticket life cycle, SLA due times and breaches, scope, the annual register."""

import csv
import datetime as dt
import io
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from openpyxl import load_workbook
from rest_framework.test import APIClient

from feedback import services
from feedback.exports import escape_cell
from feedback.models import Complaint, ComplaintEvent
from tests import factories
from tests.conftest import Cast

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


def hours_ago(hours: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(hours=hours)


def open_complaint(client, *, severity="high", opened_at=None, by=None, description="Order was not executed."):
    return services.complaint_open(
        client=client,
        channel="phone",
        category="trading",
        severity=severity,
        description=description,
        opened_at=opened_at,
        by=by,
    )


def flags(complaint: Complaint, now: dt.datetime | None = None) -> tuple[bool, bool]:
    row = Complaint.objects.with_sla(now or timezone.now()).get(pk=complaint.pk)
    return row.first_response_breached, row.resolution_breached


def test_due_times_come_from_the_severity_setting_when_opened(cast: Cast, settings) -> None:
    opened = hours_ago(1)
    complaint = open_complaint(cast.alice_client, severity="critical", opened_at=opened)
    assert complaint.first_response_due_at == opened + dt.timedelta(hours=2)
    assert complaint.resolution_due_at == opened + dt.timedelta(hours=24)
    # a later settings change does not move the due times of an existing ticket
    settings.FEEDBACK_SLA = {**settings.FEEDBACK_SLA, "critical": {"first_response_hours": 1, "resolution_hours": 4}}
    complaint.refresh_from_db()
    assert complaint.first_response_due_at == opened + dt.timedelta(hours=2)
    assert open_complaint(cast.alice_client, severity="critical", opened_at=opened).first_response_due_at == (
        opened + dt.timedelta(hours=1)
    )


def test_breaches_of_open_tickets_are_computed_as_of_now(cast: Cast) -> None:
    # high: 8 h to respond, 72 h to resolve
    fresh = open_complaint(cast.alice_client, opened_at=hours_ago(7))
    late = open_complaint(cast.alice_client, opened_at=hours_ago(9))
    very_late = open_complaint(cast.alice_client, opened_at=hours_ago(73))
    assert flags(fresh) == (False, False)
    assert flags(late) == (True, False)
    assert flags(very_late) == (True, True)
    # the same ticket a little later
    assert flags(fresh, timezone.now() + dt.timedelta(hours=2)) == (True, False)
    assert set(Complaint.objects.breached(timezone.now(), "first_response")) == {late, very_late}
    assert set(Complaint.objects.breached(timezone.now(), "resolution")) == {very_late}


def test_answered_tickets_are_judged_by_when_they_were_answered(cast: Cast) -> None:
    on_time = open_complaint(cast.alice_client, opened_at=hours_ago(100))
    services.complaint_respond(complaint=on_time, by=cast.alice.user, at=hours_ago(93))  # after 7 h
    services.complaint_resolve(
        complaint=on_time, by=cast.alice.user, root_cause="Routing fault", resolution="Refunded", at=hours_ago(30)
    )
    late = open_complaint(cast.alice_client, opened_at=hours_ago(100))
    services.complaint_respond(complaint=late, by=cast.alice.user, at=hours_ago(91))  # after 9 h
    assert flags(on_time) == (False, False)  # resolved after 70 h
    assert flags(late) == (True, True)  # responded after 9 h; still open after 100 h


def test_life_cycle_and_audit_trail(cast: Cast) -> None:
    complaint = open_complaint(cast.alice_client, opened_at=hours_ago(5), by=cast.alice.user)
    services.complaint_escalate(complaint=complaint, by=cast.tina, reason="Client threatens to go to the regulator")
    with pytest.raises(services.FeedbackError, match="already escalated"):
        services.complaint_escalate(complaint=complaint, by=cast.tina, reason="again")
    with pytest.raises(services.FeedbackError, match="root_cause: required"):
        services.complaint_resolve(complaint=complaint, by=cast.alice.user, root_cause=" ", resolution="x")
    resolved = services.complaint_resolve(
        complaint=complaint, by=cast.alice.user, root_cause="Stale quote", resolution="Re-executed at the quoted price"
    )
    assert resolved.status == "resolved"
    assert resolved.first_response_at == resolved.resolved_at  # the resolution was the first answer
    assert list(resolved.events.values_list("action", flat=True)) == ["opened", "escalated", "responded", "resolved"]
    with pytest.raises(services.FeedbackError, match="already resolved"):
        services.complaint_resolve(complaint=resolved, by=cast.alice.user, root_cause="x", resolution="y")


def test_times_are_checked(cast: Cast) -> None:
    with pytest.raises(services.FeedbackError, match="opened_at: must not be in the future"):
        open_complaint(cast.alice_client, opened_at=timezone.now() + dt.timedelta(hours=1))
    complaint = open_complaint(cast.alice_client, opened_at=hours_ago(5))
    with pytest.raises(services.FeedbackError, match="first_response_at: must not be before opened_at"):
        services.complaint_respond(complaint=complaint, by=cast.alice.user, at=hours_ago(6))


def test_the_database_refuses_an_inconsistent_ticket(cast: Cast) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.ComplaintFactory(client=cast.alice_client, status="resolved")  # no resolution time or text
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.ComplaintFactory(client=cast.alice_client, severity="urgent")


# --- API ------------------------------------------------------------------------------------


def test_opening_through_the_api_checks_scope_and_input(cast: Cast) -> None:
    payload = {"channel": "email", "category": "fees", "severity": "medium", "description": "Charged twice."}
    created = api_as(cast.alice.user).post(
        "/api/v1/complaints/", {**payload, "client_no": cast.alice_client.client_no}, format="json"
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "open"
    assert body["first_response_breached"] is False
    assert body["events"][0]["action"] == "opened"
    assert body["reference"].startswith("CMP-")
    other = api_as(cast.alice.user).post(
        "/api/v1/complaints/", {**payload, "client_no": cast.bob_client.client_no}, format="json"
    )
    assert other.status_code == 404
    bad = api_as(cast.alice.user).post(
        "/api/v1/complaints/",
        {**payload, "severity": "urgent", "client_no": cast.alice_client.client_no},
        format="json",
    )
    assert bad.status_code == 400
    assert "severity" in bad.json()


def test_actions_through_the_api(cast: Cast) -> None:
    complaint = open_complaint(cast.alice_client, opened_at=hours_ago(3))
    api = api_as(cast.alice.user)
    url = f"/api/v1/complaints/{complaint.pk}"
    assert api.post(f"{url}/respond/", {"note": "Called the client"}, format="json").json()["status"] == "in_progress"
    assert api.post(f"{url}/respond/", {}, format="json").status_code == 400
    assert api.post(f"{url}/escalate/", {"reason": "Large amount"}, format="json").json()["escalated_at"]
    resolved = api.post(f"{url}/resolve/", {"root_cause": "Fee table", "resolution": "Refund"}, format="json")
    assert resolved.json()["status"] == "resolved"
    assert api_as(cast.mike.user).post(f"{url}/respond/", {}, format="json").status_code == 404
    assert api_as(cast.mike.user).get(f"{url}/").status_code == 404


def test_list_scope_filters_and_breach_filter(cast: Cast) -> None:
    late = open_complaint(cast.alice_client, opened_at=hours_ago(10))  # high: response breached
    fine = open_complaint(cast.bob_client, opened_at=hours_ago(1))
    open_complaint(cast.mike_client, opened_at=hours_ago(1), severity="low")

    def ids(user, query=""):
        return {row["id"] for row in api_as(user).get(f"/api/v1/complaints/?{query}").json()["results"]}

    assert ids(cast.alice.user) == {late.pk}
    assert ids(cast.tina) == {late.pk, fine.pk}
    assert len(ids(cast.carol)) == 3
    assert ids(cast.carol, "breached=first_response") == {late.pk}
    assert late.pk not in ids(cast.carol, "breached=none")
    assert ids(cast.carol, "severity=low") == ids(cast.carol, f"client={cast.mike_client.client_no}")
    assert api_as(cast.carol).get("/api/v1/complaints/?breached=maybe").status_code == 400


def test_the_list_costs_the_same_queries_for_3_or_30_tickets(cast: Cast, django_assert_num_queries) -> None:
    for _ in range(3):
        open_complaint(cast.alice_client, opened_at=hours_ago(2))
    api = api_as(cast.tina)
    api.get("/api/v1/complaints/")
    with django_assert_num_queries(4) as few:  # session, user, roles, page
        assert len(api.get("/api/v1/complaints/").json()["results"]) == 3
    for _ in range(27):
        open_complaint(cast.bob_client, opened_at=hours_ago(2))
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(api.get("/api/v1/complaints/").json()["results"]) == 30


# --- The register -----------------------------------------------------------------------------


@pytest.fixture
def register_year(cast: Cast) -> int:
    year = timezone.localdate().year - 1
    opened = dt.datetime(year, 3, 1, 10, tzinfo=timezone.get_default_timezone())
    first = open_complaint(cast.alice_client, opened_at=opened, description='=HYPERLINK("http://x")')
    services.complaint_resolve(
        complaint=first,
        by=cast.alice.user,
        root_cause="+cmd|' /C calc'!A0",
        resolution="Apologised",
        at=opened + dt.timedelta(hours=30),
    )
    open_complaint(cast.mike_client, opened_at=opened + dt.timedelta(days=1), description="@SUM(1)")
    open_complaint(cast.bob_client, opened_at=dt.datetime(year + 1, 1, 1, 0, 5, tzinfo=timezone.get_default_timezone()))
    return year


def test_register_csv_holds_the_year_and_escapes_formulas(cast: Cast, register_year: int) -> None:
    response = api_as(cast.carol).get(f"/api/v1/complaints/register/?year={register_year}")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="complaints-register-{register_year}.csv"'
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert [row["Client number"] for row in rows] == [cast.alice_client.client_no, cast.mike_client.client_no]
    assert rows[0]["Description"] == '\'=HYPERLINK("http://x")'
    assert rows[0]["Root cause"].startswith("'+")
    assert rows[0]["Hours to resolution"] == "30.00"
    assert rows[0]["Resolution SLA breached"] == "no"  # high: 72 h
    assert rows[1]["Description"] == "'@SUM(1)"
    assert rows[1]["Resolution SLA breached"] == "yes"  # still open a year later


def test_register_xlsx(cast: Cast, register_year: int) -> None:
    response = api_as(cast.olga).get(f"/api/v1/complaints/register/?year={register_year}&file_format=xlsx")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "Reference"
    assert len(rows) == 3
    assert rows[1][8] == '\'=HYPERLINK("http://x")'
    assert all(not str(cell).startswith("=") for row in rows for cell in row if cell is not None)


@pytest.mark.parametrize("query", ["", "year=abc", "year=1999", "year=2026&file_format=pdf"])
def test_register_rejects_bad_parameters(cast: Cast, query: str) -> None:
    assert api_as(cast.carol).get(f"/api/v1/complaints/register/?{query}").status_code == 400


def test_register_is_for_firm_wide_roles_only(cast: Cast) -> None:
    assert api_as(cast.alice.user).get("/api/v1/complaints/register/?year=2025").status_code == 403
    assert api_as(cast.tina).get("/api/v1/complaints/register/?year=2025").status_code == 403


@pytest.mark.parametrize(
    ("value", "expected"), [("=1+1", "'=1+1"), ("-2", "'-2"), ("+x", "'+x"), ("@a", "'@a"), ("ok", "ok"), (3, 3)]
)
def test_escape_cell(value: object, expected: object) -> None:
    assert escape_cell(value) == expected


def test_events_are_recorded_with_who(cast: Cast) -> None:
    complaint = open_complaint(cast.alice_client, opened_at=hours_ago(1), by=cast.alice.user)
    event = ComplaintEvent.objects.get(complaint=complaint)
    assert (event.action, event.by) == ("opened", cast.alice.user)


def test_register_command_writes_the_same_file(cast: Cast, register_year: int, tmp_path) -> None:
    from django.core.management import call_command

    out = tmp_path / "register.csv"
    call_command("export_complaints_register", "--year", str(register_year), "--out", str(out))
    api = api_as(cast.carol).get(f"/api/v1/complaints/register/?year={register_year}")
    assert out.read_bytes() == api.content
