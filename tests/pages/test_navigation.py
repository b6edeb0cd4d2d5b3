"""The header's links follow the user's roles; the current page is marked."""

import pytest
from django.test import Client as Browser

pytestmark = pytest.mark.django_db


def links(user: object, path: str = "/") -> list[str]:
    browser = Browser()
    browser.force_login(user)
    response = browser.get(path)
    return [link["label"] for link in response.context["navigation"]]


def test_each_role_gets_its_pages(cast) -> None:
    assert links(cast.alice.user) == ["Book", "Compliance"]
    assert links(cast.tina) == ["Book", "Compliance", "Dashboards"]
    assert links(cast.carol) == ["Book", "Compliance", "Dashboards"]
    assert links(cast.olga) == ["Book", "Dashboards"]


def test_the_current_page_is_marked(cast) -> None:
    browser = Browser()
    browser.force_login(cast.carol)
    page = browser.get("/compliance/")
    current = [link["label"] for link in page.context["navigation"] if link["current"]]
    assert current == ["Compliance"]
    assert 'aria-current="page"' in page.content.decode()
