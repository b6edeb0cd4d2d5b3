"""The home page: the signed-in user's book, through the permission policy."""

import datetime as dt

import pytest
from django.urls import reverse

from clients.models import Client
from tests import factories

HOME = reverse("home")


def test_anonymous_is_sent_to_login(client, db):
    response = client.get(HOME)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next=/"


def test_account_manager_sees_own_book_only(client, cast):
    client.force_login(cast.alice.user)

    response = client.get(HOME)

    assert response.status_code == 200
    assert cast.alice_client.client_no in response.text
    assert cast.bob_client.client_no not in response.text
    assert cast.mike_client.client_no not in response.text
    assert response.context["title"] == "My book"
    assert [c.pk for c in response.context["page"].object_list] == [cast.alice_client.pk]


def test_team_lead_sees_the_team_books_but_not_other_teams(client, cast):
    client.force_login(cast.tina)

    response = client.get(HOME)

    shown = {c.pk for c in response.context["page"].object_list}
    assert shown == {cast.alice_client.pk, cast.bob_client.pk}
    assert cast.mike_client.client_no not in response.text
    assert response.context["title"] == "Team book"


def test_firm_wide_role_sees_every_client(client, cast):
    client.force_login(cast.olga)

    response = client.get(HOME)

    assert response.context["counts"] == {"open": 3, "total": 3}
    assert response.context["title"] == "All clients"


def test_user_without_a_client_role_sees_the_empty_state(client, db):
    client.force_login(factories.UserFactory(username="no_role_nina"))

    response = client.get(HOME)

    assert response.status_code == 200
    assert response.context["counts"] == {"open": 0, "total": 0}
    assert "There are no clients in your book." in response.text
    assert "<table" not in response.text


def test_counts_open_and_total(client, cast):
    factories.ClientFactory(account_manager=cast.alice, status=Client.Status.RESTRICTED)
    factories.ClientFactory(account_manager=cast.alice, status=Client.Status.CLOSED, closed_on=dt.date(2024, 3, 1))
    client.force_login(cast.alice.user)

    response = client.get(HOME)

    # Restricted accounts are still open; only closed ones are not.
    assert response.context["counts"] == {"open": 2, "total": 3}


def test_search_by_name_and_by_client_number(client, cast):
    wang = factories.ClientFactory(account_manager=cast.alice, name="Wang Fang", client_no="C77001234")
    li = factories.ClientFactory(account_manager=cast.alice, name="Li Lei", client_no="C88005678")
    client.force_login(cast.alice.user)

    by_name = client.get(HOME, {"q": "wang"})
    by_number = client.get(HOME, {"q": "c8800"})

    assert [c.pk for c in by_name.context["page"].object_list] == [wang.pk]
    assert [c.pk for c in by_number.context["page"].object_list] == [li.pk]
    assert by_name.context["counts"]["total"] == 3  # counts are the whole book, not the search


def test_search_never_reaches_outside_the_book(client, cast):
    client.force_login(cast.alice.user)

    response = client.get(HOME, {"q": cast.bob_client.client_no})

    assert list(response.context["page"].object_list) == []
    assert "No client matches" in response.text


def test_search_text_is_escaped(client, cast):
    client.force_login(cast.alice.user)

    response = client.get(HOME, {"q": "<script>alert(1)</script>"})

    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;" in response.text


def test_pages_of_fifty_and_search_kept_across_pages(client, cast):
    factories.ClientFactory.create_batch(60, account_manager=cast.alice, name="Zhang San")
    client.force_login(cast.alice.user)

    first = client.get(HOME, {"q": "zhang"})
    second = client.get(HOME, {"q": "zhang", "page": 2})
    past_the_end = client.get(HOME, {"q": "zhang", "page": 99})

    assert len(first.context["page"].object_list) == 50
    assert 'href="?q=zhang&amp;page=2"' in first.text
    assert len(second.context["page"].object_list) == 10
    assert past_the_end.context["page"].number == 2


def test_header_shows_name_roles_language_switch_and_logout(client, cast):
    client.force_login(cast.tina)

    response = client.get(HOME)

    assert cast.tina.get_full_name() in response.text
    assert "Team lead" in response.text
    assert f'action="{reverse("set_language")}"' in response.text
    assert 'value="zh-hans"' in response.text
    assert f'action="{reverse("logout")}" method="post"' in response.text


@pytest.mark.parametrize("book_size", [3, 30])
def test_home_query_count_does_not_grow_with_the_book(client, cast, django_assert_num_queries, book_size):
    factories.ClientFactory.create_batch(book_size - 1, account_manager=cast.alice)
    client.force_login(cast.alice.user)

    # session, user, roles, counts (also the page count: no search), page rows (branch and manager joined), the
    # published scores (nothing published here: the work lists stay empty), today's tasks; the
    # book panels: the night's tier date (none: no glance), reactivation date and list,
    # birthdays, ID documents, assessments, complaints
    with django_assert_num_queries(14):
        response = client.get(HOME)

    assert len(response.context["page"].object_list) == book_size


def test_search_query_count_is_the_same(client, cast, django_assert_num_queries):
    factories.ClientFactory.create_batch(30, account_manager=cast.alice, name="Zhou Li")
    client.force_login(cast.alice.user)

    with django_assert_num_queries(15):  # as above: today's tasks and the book panels included
        client.get(HOME, {"q": "zhou", "page": "1"})
