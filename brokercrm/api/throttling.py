"""Throttles for the API beyond DRF's user/anon defaults.

Rates are read from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] on every request (DRF's own
classes freeze them at import), so a test can override them. Throttling is best-effort
under concurrency (PERFORMANCE.md): the lockout of a username after repeated failures is
django-axes' job; this only slows down a client hammering the token endpoint.
"""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView


class AuthRateThrottle(SimpleRateThrottle):
    """Requests for a token per client address: the "auth" rate, 10/minute by default."""

    scope = "auth"
    default_rate = "10/minute"

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope, self.default_rate)

    def get_cache_key(self, request: Request, view: APIView) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
