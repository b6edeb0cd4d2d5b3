"""The Celery app. Settings (broker, eager mode, beat schedule) come from Django's
settings under the CELERY_ namespace; the beat schedule is in brokercrm/settings/base.py."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokercrm.settings.local")

app = Celery("brokercrm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
