"""Settings of the Celery worker processes the fault tests start: the test settings, plus the
hold points (hold.py) that let a test stop a worker in the middle of a given stage."""

from brokercrm.settings.test import *  # noqa: F403

# Give up re-trying the bookkeeping over a database outage well within a test's patience.
NIGHTLY_DB_RETRY_SECONDS = 30

import tests.faults.hold  # noqa: E402, F401  (connects the task signals)
