"""/api/v1/ routes of segmentation (included by brokercrm/api/urls.py)."""

from django.urls import path

from segmentation.api import views

app_name = "segmentation_api"

urlpatterns = [
    path("tiers/", views.TierListView.as_view(), name="tier-list"),
    path("tiers/runs/", views.TierRunListView.as_view(), name="tier-run-list"),
    path("tiers/pareto/", views.ParetoView.as_view(), name="tier-pareto"),
    path("tiers/migration/", views.MigrationView.as_view(), name="tier-migration"),
    path("tier-overrides/<int:pk>/end/", views.TierOverrideEndView.as_view(), name="tier-override-end"),
    path("clients/<str:client_no>/tiers/", views.ClientTierHistoryView.as_view(), name="client-tiers"),
    path(
        "clients/<str:client_no>/tier-overrides/", views.ClientTierOverrideView.as_view(), name="client-tier-override"
    ),
    path("clients/<str:client_no>/needs/", views.ClientNeedsView.as_view(), name="client-needs"),
    path("reactivation/", views.ReactivationListView.as_view(), name="reactivation-list"),
    path("nightly-runs/", views.NightlyRunListView.as_view(), name="nightly-run-list"),
    path("nightly-runs/<str:as_of>/", views.NightlyRunDetailView.as_view(), name="nightly-run-detail"),
]
