"""The embedded default: SQLite, Celery eager, runserver. For a developer's machine and the demo."""

from brokercrm.lib.env import env_bool

from .base import *  # noqa: F403

DEBUG = env_bool("DEBUG", default=True)
