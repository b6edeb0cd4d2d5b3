"""Server-rendered pages (the API lives under /api/v1/, admin under /admin/)."""

from django.contrib.auth.views import LogoutView
from django.urls import include, path

from brokercrm import views
from clients import views as client_views

urlpatterns = [
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", LogoutView.as_view(), name="logout"),
    path("", client_views.home, name="home"),
    path("clients/<str:client_no>/", client_views.client_detail, name="client-detail"),
    path("clients/<str:client_no>/trades/", client_views.client_trades, name="client-trades"),
    path("clients/<str:client_no>/interactions/", client_views.client_interaction_log, name="client-interaction-log"),
    path("clients/<str:client_no>/tasks/", client_views.client_task_add, name="client-task-add"),
    path("clients/<str:client_no>/complaints/", client_views.client_complaint_open, name="client-complaint-open"),
    path(
        "clients/<str:client_no>/callbacks/<int:pk>/",
        client_views.client_callback_record,
        name="client-callback-record",
    ),
    path("tasks/<int:pk>/done/", client_views.task_done, name="task-done"),
    path("tasks/<int:pk>/reschedule/", client_views.task_reschedule, name="task-reschedule"),
    path("tasks/<int:pk>/cancel/", client_views.task_cancel, name="task-cancel"),
    path("compliance/", include("compliance.page_urls")),
    path("dashboards/", include("metrics.page_urls")),
]
