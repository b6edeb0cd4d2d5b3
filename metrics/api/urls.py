"""/api/v1/ routes of metrics (included by brokercrm/api/urls.py)."""

from django.urls import path

from metrics.api import views

app_name = "metrics_api"

urlpatterns = [
    path("metrics/dashboard/", views.DashboardView.as_view(), name="metric-dashboard"),
    path("metrics/series/", views.SeriesView.as_view(), name="metric-series"),
    path("metrics/definitions/", views.DefinitionListView.as_view(), name="metric-definitions"),
]
