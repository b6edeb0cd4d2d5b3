"""Every /api/v1/ route. Each app contributes its own urls module."""

from django.http import HttpRequest, JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt

from brokercrm.api.auth import ObtainTokenView


@csrf_exempt  # it changes nothing; without this a stray POST would get the CSRF failure page
def not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    """Any other path under /api/v1/ (including a malformed id: /api/v1/tasks/abc/): a JSON 404
    like the API's own, not Django's HTML page."""
    return JsonResponse({"detail": "Not found."}, status=404)


urlpatterns = [
    path("auth/token/", ObtainTokenView.as_view(), name="api-token"),
    path("", include("clients.api.urls")),
    path("ingest/", include("clients.ingest.urls")),
    path("", include("segmentation.api.urls")),
    path("", include("retention.api.scores_urls")),
    path("", include("feedback.api.urls")),
    path("", include("metrics.api.urls")),
    path("retention/", include("retention.api.work_urls")),
    path("compliance/", include("compliance.api.urls")),
    # Last: it answers every path the routes above do not match.
    re_path(r"^(?P<rest>[\s\S]*)$", not_found, name="api-not-found"),  # [\s\S]: a %0A in the path too
]
