"""Surveys: who may record an answer, score ranges, campaigns, the detractor follow-up task."""

import datetime as dt
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from feedback import services
from feedback.models import SurveyCampaign, SurveyInvitation, SurveyResponse
from retention.work.models import RetentionTask
from tests import factories
from tests.conftest import Cast

pytestmark = pytest.mark.django_db

URL = "/api/v1/survey-responses/"


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
def nps(db: None):
    return factories.SurveyQuestionFactory(kind="nps")


@pytest.fixture
def csat(db: None):
    return factories.SurveyQuestionFactory(kind="csat")


def test_the_survey_system_records_an_answer_for_any_client(cast: Cast, csat) -> None:
    response = api_as(cast.system).post(
        URL, {"client_no": cast.mike_client.client_no, "question": csat.pk, "score": 4, "comment": " Quick "}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["kind"], body["score"], body["comment"], body["source"]) == ("csat", 4, "Quick", "api")


def test_an_account_manager_records_answers_of_her_own_clients_only(cast: Cast, csat) -> None:
    api = api_as(cast.alice.user)
    own = api.post(URL, {"client_no": cast.alice_client.client_no, "question": csat.pk, "score": 5})
    assert own.status_code == 201
    assert own.json()["source"] == "account_manager"
    assert api.post(URL, {"client_no": cast.bob_client.client_no, "question": csat.pk, "score": 5}).status_code == 404


def test_other_roles_may_read_but_not_record(cast: Cast, csat) -> None:
    refused = api_as(cast.carol).post(URL, {"client_no": cast.alice_client.client_no, "question": csat.pk, "score": 5})
    assert refused.status_code == 403
    team_lead = api_as(cast.tina).post(URL, {"client_no": cast.alice_client.client_no, "question": csat.pk, "score": 5})
    assert team_lead.status_code == 403
    assert not SurveyResponse.objects.exists()


@pytest.mark.parametrize(("kind", "score"), [("csat", 0), ("csat", 6), ("nps", -1), ("nps", 11)])
def test_scores_outside_the_scale_are_refused(cast: Cast, kind: str, score: int) -> None:
    question = factories.SurveyQuestionFactory(kind=kind)
    response = api_as(cast.system).post(
        URL, {"client_no": cast.alice_client.client_no, "question": question.pk, "score": score}
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("score: a ")


def test_the_database_checks_the_scale_too(cast: Cast, csat) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.SurveyResponseFactory(client=cast.alice_client, question=csat, score=7)


@pytest.mark.parametrize(
    "payload",
    [{"score": "x"}, {"question": 999999}, {"answered_at": "tomorrow"}, {"score": 3.5}],
)
def test_malformed_input_answers_400(cast: Cast, csat, payload: dict) -> None:
    data = {"client_no": cast.alice_client.client_no, "question": csat.pk, "score": 3, **payload}
    assert api_as(cast.system).post(URL, data, format="json").status_code == 400


def test_a_future_answer_time_is_refused(cast: Cast, csat) -> None:
    later = (timezone.now() + dt.timedelta(hours=2)).isoformat()
    response = api_as(cast.system).post(
        URL, {"client_no": cast.alice_client.client_no, "question": csat.pk, "score": 3, "answered_at": later}
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "answered_at: must not be in the future."


def test_a_detractor_opens_one_follow_up_task_for_the_account_manager(cast: Cast, nps) -> None:
    # when
    response = api_as(cast.system).post(
        URL, {"client_no": cast.alice_client.client_no, "question": nps.pk, "score": 3, "comment": "Slow app"}
    )
    # then
    assert response.status_code == 201
    task = RetentionTask.objects.get(client=cast.alice_client)
    assert (task.kind, task.source, task.reason_code) == ("at_risk_outreach", "feedback", "nps_detractor")
    assert task.assignee == cast.alice.user
    assert "Slow app" in task.reason_text
    assert task.dedupe_key == f"nps-detractor:{response.json()['id']}"
    # a passive or promoter answer opens none
    for score in (7, 9):
        api_as(cast.system).post(URL, {"client_no": cast.bob_client.client_no, "question": nps.pk, "score": score})
    assert not RetentionTask.objects.filter(client=cast.bob_client).exists()


def test_the_task_is_in_the_answers_transaction(cast: Cast, nps, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(**kwargs: object) -> None:
        raise RuntimeError("task store down")

    monkeypatch.setattr("retention.services.open_task", broken)
    with pytest.raises(RuntimeError):
        services.survey_response_record(client=cast.alice_client, question=nps, score=0, by=cast.system)
    assert not SurveyResponse.objects.exists()


def test_campaign_to_a_segment_and_its_answers(cast: Cast, csat) -> None:
    campaign = SurveyCampaign.objects.create(name="Q3 service", question=csat, account_manager=cast.alice)
    extra = factories.ClientFactory(account_manager=cast.alice)
    factories.ClientFactory(
        account_manager=cast.alice, opened_on=dt.date(2020, 1, 2), closed_on=dt.date(2021, 1, 1), status="closed"
    )
    # when
    invited = services.survey_campaign_send(campaign=campaign, by=cast.olga)
    # then: alice's open clients only
    assert invited == 2
    assert set(SurveyInvitation.objects.values_list("client_id", flat=True)) == {cast.alice_client.pk, extra.pk}
    campaign.refresh_from_db()
    assert campaign.status == "sent"
    with pytest.raises(services.FeedbackError, match="already been sent"):
        services.survey_campaign_send(campaign=campaign, by=cast.olga)
    answer = {"client_no": cast.alice_client.client_no, "question": csat.pk, "score": 4, "campaign": campaign.pk}
    assert api_as(cast.system).post(URL, answer).status_code == 201
    assert api_as(cast.system).post(URL, answer).json()["detail"].startswith("campaign: the client has already")
    uninvited = {**answer, "client_no": cast.bob_client.client_no}
    assert api_as(cast.system).post(URL, uninvited).json()["detail"] == services.FeedbackError.NOT_INVITED


def test_answers_list_is_scoped_with_pinned_queries(cast: Cast, csat, django_assert_num_queries) -> None:
    for _ in range(3):
        factories.SurveyResponseFactory(client=cast.alice_client, question=csat, score=4)
    factories.SurveyResponseFactory(client=cast.mike_client, question=csat, score=1)
    api = api_as(cast.tina)
    api.get(URL)
    with django_assert_num_queries(4) as few:
        assert len(api.get(URL).json()["results"]) == 3
    for _ in range(27):
        factories.SurveyResponseFactory(client=cast.bob_client, question=csat, score=2)
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(api.get(URL).json()["results"]) == 30
    assert len(api_as(cast.carol).get(URL + "?kind=csat&page_size=100").json()["results"]) == 31
    assert api_as(cast.carol).get(URL + "?campaign=0.5").status_code == 400


def test_questions_are_listed(cast: Cast, csat, nps) -> None:
    rows = api_as(cast.alice.user).get("/api/v1/survey-questions/").json()["results"]
    assert {row["kind"] for row in rows} == {"csat", "nps"}
