from django.urls import path

from retention.api import scores

urlpatterns = [
    path("churn-scores/", scores.ChurnScoreListView.as_view(), name="churn-score-list"),
    path("activity/", scores.ActivityListView.as_view(), name="activity-list"),
    path("clients/<str:client_no>/scores/", scores.ClientScoresView.as_view(), name="client-scores"),
    path("lifetime-fits/", scores.LifetimeFitListView.as_view(), name="lifetime-fit-list"),
]
