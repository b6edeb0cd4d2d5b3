"""Metrics tests share the nightly fixtures (eager Celery, run_nightly)."""

from tests.nightly.conftest import eager_celery, run_nightly

__all__ = ["eager_celery", "run_nightly"]
