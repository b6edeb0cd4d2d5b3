from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BrokerCRMConfig(AppConfig):
    name = "brokercrm"
    verbose_name = _("Nightly pipeline")

    def ready(self) -> None:
        # The security log: failed logins (Django's signal) and lockouts (axes').
        from brokercrm import security

        security.connect_signals()
