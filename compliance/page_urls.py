"""Compliance pages under /compliance/ (the API is under /api/v1/compliance/)."""

from django.urls import path

from compliance import pages

urlpatterns = [
    path("", pages.queue, name="compliance-queue"),
    path("take-next/", pages.take_next, name="compliance-take-next"),
    path("flags/<int:pk>/", pages.flag_detail, name="compliance-flag"),
    path("flags/<int:pk>/decide/", pages.flag_decide, name="compliance-decide"),
    path("flags/<int:pk>/approve/", pages.flag_approve, name="compliance-approve"),
    path("flags/<int:pk>/reject/", pages.flag_reject, name="compliance-reject"),
    path("clients/<str:client_no>/audit/", pages.client_audit, name="compliance-client-audit"),
]
