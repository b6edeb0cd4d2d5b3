"""/api/v1/retention/ routes of retention work (included by brokercrm/api/urls.py)."""

from django.urls import path

from retention.api import work as views

app_name = "retention_work_api"

urlpatterns = [
    path("tasks/", views.TaskListView.as_view(), name="task-list"),
    path("tasks/workload/", views.TaskWorkloadView.as_view(), name="task-workload"),
    path("tasks/<int:id>/", views.TaskDetailView.as_view(), name="task-detail"),
    path("tasks/<int:id>/complete/", views.TaskCompleteView.as_view(), name="task-complete"),
    path("tasks/<int:id>/cancel/", views.TaskCancelView.as_view(), name="task-cancel"),
    path("playbooks/", views.PlaybookListView.as_view(), name="playbook-list"),
    path("callbacks/", views.CallbackListView.as_view(), name="callback-list"),
    path("callbacks/progress/", views.CallbackProgressView.as_view(), name="callback-progress"),
    path("callbacks/samples/", views.CallbackSampleView.as_view(), name="callback-sample"),
    path("callbacks/<int:id>/attempts/", views.CallbackAttemptView.as_view(), name="callback-attempt"),
    path("service-products/", views.ServiceProductListView.as_view(), name="service-product-list"),
    path(
        "clients/<str:client_no>/entitlements/",
        views.ClientEntitlementListView.as_view(),
        name="client-entitlements",
    ),
    path("entitlements/<int:id>/deliveries/", views.EntitlementDeliveryView.as_view(), name="entitlement-delivery"),
    path("campaigns/", views.CampaignListView.as_view(), name="campaign-list"),
    path("campaigns/<int:id>/<str:action>/", views.CampaignActionView.as_view(), name="campaign-action"),
]
