"""Every /api/v1/ route. Each app contributes its own urls module."""

from django.urls import include, path

from brokercrm.api.auth import ObtainTokenView

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
]
