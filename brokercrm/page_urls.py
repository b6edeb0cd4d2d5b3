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
    path("compliance/", include("compliance.page_urls")),
    path("dashboards/", include("metrics.page_urls")),
]
