from django.apps import AppConfig


class BrokerCRMConfig(AppConfig):
    name = "brokercrm"
    verbose_name = "BrokerCRM"

    def ready(self) -> None:
        # The security log: failed logins (Django's signal) and lockouts (axes').
        from brokercrm import security

        security.connect_signals()
