"""/api/v1/ routes of the client data. Clients are addressed by their back-office number."""

from django.urls import path

from clients.api import views

app_name = "clients_api"

urlpatterns = [
    path("clients/", views.ClientListView.as_view(), name="client-list"),
    path("clients/<str:client_no>/", views.ClientDetailView.as_view(), name="client-detail"),
    path(
        "clients/<str:client_no>/interactions/",
        views.ClientInteractionListView.as_view(),
        name="client-interaction-list",
    ),
    path("trades/", views.TradeListView.as_view(), name="trade-list"),
    path("cash-flows/", views.CashFlowListView.as_view(), name="cash-flow-list"),
    path("asset-snapshots/", views.AssetSnapshotListView.as_view(), name="asset-snapshot-list"),
    path("instruments/", views.InstrumentListView.as_view(), name="instrument-list"),
]
