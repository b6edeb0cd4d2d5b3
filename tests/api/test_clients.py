"""What the client endpoints return: list rows, the detail with KYC (masked outside
compliance) and the current risk level."""

import datetime as dt

from django.urls import reverse

from tests import factories
from tests.conftest import Cast


def test_client_list_row(cast: Cast, api_as) -> None:
    cast.alice.user.first_name, cast.alice.user.last_name = "Alice", "Wang"
    cast.alice.user.save()

    response = api_as(cast.alice.user).get(reverse("clients_api:client-list"))

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["results"] == [
        {
            "client_no": cast.alice_client.client_no,
            "name": "Alice's client",
            "kind": "individual",
            "status": "open",
            "branch": "SH01",
            "branch_name": "Shanghai Lujiazui",
            "account_manager": {"employee_no": cast.alice.employee_no, "name": "Alice Wang"},
            "opened_on": "2020-01-02",
            "closed_on": None,
        }
    ]


def test_detail_masks_the_id_number_for_an_account_manager(cast: Cast, api_as) -> None:
    factories.KYCProfileFactory(client=cast.alice_client, id_number="110105198005171234", is_pep=True)

    kyc = api_as(cast.alice.user).get(reverse("clients_api:client-detail", args=[cast.alice_client.client_no]))
    kyc = kyc.json()["kyc"]

    assert kyc["id_number"] == "110***********1234"
    assert kyc["id_type"] == "resident_id"
    assert kyc["is_pep"] is True


def test_detail_shows_the_full_id_number_to_compliance_only(cast: Cast, api_as) -> None:
    factories.KYCProfileFactory(client=cast.alice_client, id_number="110105198005171234")
    url = reverse("clients_api:client-detail", args=[cast.alice_client.client_no])

    assert api_as(cast.carol).get(url).json()["kyc"]["id_number"] == "110105198005171234"
    for user in (cast.tina, cast.olga, cast.system):
        assert api_as(user).get(url).json()["kyc"]["id_number"] == "110***********1234"
    # The compliance officer's view of the unmasked number is in the audit trail; the masked views are not.
    from compliance.models import AuditEntry

    views = list(AuditEntry.objects.filter(action="kyc.id_number_viewed").values_list("actor__username", "client_id"))
    assert views == [("compliance_carol", cast.alice_client.pk)]


def test_detail_current_risk_is_the_latest_assessment(cast: Cast, api_as) -> None:
    client = cast.alice_client
    factories.RiskAssessmentFactory(
        client=client, risk_level=2, assessed_on=dt.date(2023, 3, 1), expires_on=dt.date(2025, 3, 1)
    )
    factories.RiskAssessmentFactory(
        client=client, risk_level=4, score=78, assessed_on=dt.date(2025, 3, 1), expires_on=dt.date(2027, 3, 1)
    )
    factories.RiskAssessmentFactory(client=cast.bob_client, risk_level=5, assessed_on=dt.date(2026, 1, 1))

    body = api_as(cast.alice.user).get(reverse("clients_api:client-detail", args=[client.client_no])).json()

    assert body["current_risk"] == {
        "risk_level": 4,
        "risk_level_label": "C4",
        "score": 78,
        "horizon": "",
        "assessed_on": "2025-03-01",
        "expires_on": "2027-03-01",
    }
    assert body["account_manager"]["employee_no"] == cast.alice.employee_no
    assert body["opened_on"] == "2020-01-02"
    assert body["birthday"] == "1980-05-17"


def test_detail_without_kyc_or_assessment_has_nulls(cast: Cast, api_as) -> None:
    body = api_as(cast.carol).get(reverse("clients_api:client-detail", args=[cast.bob_client.client_no])).json()
    assert body["kyc"] is None
    assert body["current_risk"] is None


def test_interactions_of_a_client_newest_first(cast: Cast, api_as) -> None:
    now = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
    factories.InteractionFactory(client=cast.alice_client, occurred_at=now - dt.timedelta(days=2), by=cast.alice.user)
    factories.InteractionFactory(client=cast.alice_client, occurred_at=now, summary="Callback about margin.")
    factories.InteractionFactory(client=cast.bob_client, occurred_at=now)

    response = api_as(cast.alice.user).get(
        reverse("clients_api:client-interaction-list", args=[cast.alice_client.client_no])
    )

    rows = response.json()["results"]
    assert [row["summary"] for row in rows] == ["Callback about margin.", "Quarterly portfolio review call."]
    assert rows[0]["by"] is None
    assert rows[1]["by"] == "am_alice"
