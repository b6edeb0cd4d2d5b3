"""Fixtures for the API tests: signed-in API clients and a clean throttle cache."""

from collections.abc import Callable, Iterator

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tests import factories


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    # Throttle histories live in the cache; one test's requests must not count in the next.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api_as() -> Callable[[object], APIClient]:
    """An APIClient signed in (session) as the given user."""

    def make(user: object) -> APIClient:
        client = APIClient()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def nobody(db: None) -> object:
    """A signed-in user with no CRM role: the policy gives them nothing."""
    return factories.UserFactory(username="no_role_nina")
