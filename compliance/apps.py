from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = _("Compliance")

    def ready(self) -> None:
        from clients.ingest.services import import_committed
        from compliance.tasks import on_import_committed

        import_committed.connect(on_import_committed, dispatch_uid="compliance.flags_after_import")
