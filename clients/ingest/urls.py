"""/api/v1/ingest/: imports by other systems, and the record of every import."""

from django.urls import path, re_path

from clients.ingest import api
from clients.ingest.kinds import KINDS

app_name = "ingest"

urlpatterns = [
    path("batches/", api.ImportBatchListView.as_view(), name="batch-list"),
    path("batches/<int:pk>/", api.ImportBatchDetailView.as_view(), name="batch-detail"),
    re_path(rf"^(?P<kind>{'|'.join(sorted(KINDS))})/$", api.IngestView.as_view(), name="ingest"),
]
