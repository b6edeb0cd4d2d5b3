"""/api/v1/ routes of feedback (included by brokercrm/api/urls.py)."""

from django.urls import path

from feedback.api import views

app_name = "feedback_api"

urlpatterns = [
    path("complaints/", views.ComplaintListView.as_view(), name="complaint-list"),
    path("complaints/register/", views.ComplaintRegisterView.as_view(), name="complaint-register"),
    path("complaints/<int:pk>/", views.ComplaintDetailView.as_view(), name="complaint-detail"),
    path("complaints/<int:pk>/respond/", views.ComplaintRespondView.as_view(), name="complaint-respond"),
    path("complaints/<int:pk>/escalate/", views.ComplaintEscalateView.as_view(), name="complaint-escalate"),
    path("complaints/<int:pk>/resolve/", views.ComplaintResolveView.as_view(), name="complaint-resolve"),
    path("survey-questions/", views.SurveyQuestionListView.as_view(), name="survey-question-list"),
    path("survey-responses/", views.SurveyResponseListView.as_view(), name="survey-response-list"),
]
