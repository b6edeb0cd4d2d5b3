"""Management dashboard pages under /dashboards/ (the figures' API is under /api/v1/)."""

from django.urls import path

from metrics import pages

urlpatterns = [
    path("", pages.dashboard, name="management-dashboard"),
]
