from django.apps import AppConfig


class BrokerCRMConfig(AppConfig):
    name = "brokercrm"
    verbose_name = "BrokerCRM"
