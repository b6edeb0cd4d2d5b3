"""/api/v1/compliance/ routes (included by brokercrm/api/urls.py)."""

from django.urls import path

from compliance.api import views

app_name = "compliance_api"

urlpatterns = [
    path("flags/", views.FlagListView.as_view(), name="flag-list"),
    path("flags/take-next/", views.TakeNextView.as_view(), name="flag-take-next"),
    path("flags/<int:pk>/", views.FlagDetailView.as_view(), name="flag-detail"),
    path("flags/<int:pk>/decide/", views.DecideView.as_view(), name="flag-decide"),
    path("flags/<int:pk>/approve/", views.ApproveView.as_view(), name="flag-approve"),
    path("flags/<int:pk>/reject/", views.RejectView.as_view(), name="flag-reject"),
    path("screening-matches/", views.ScreeningMatchListView.as_view(), name="screening-match-list"),
    path("watch-lists/", views.WatchListListView.as_view(), name="watch-list-list"),
    path("suitability-records/", views.SuitabilityListView.as_view(), name="suitability-list"),
    path("suitability-check/", views.SuitabilityCheckView.as_view(), name="suitability-check"),
    path("audit/", views.AuditListView.as_view(), name="audit-list"),
    path("exports/<str:dataset>/", views.ExportView.as_view(), name="export"),
]
