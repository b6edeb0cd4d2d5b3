"""Retention work: tasks, playbooks, regulatory callbacks, service entitlements and campaigns.

The models live in `retention.work.models` and are part of the `retention` app (imported at
the end of `retention/models.py`); writes go through `retention.services` and the modules of
this package; the nightly "act" stages are in `retention.work.stages`.
"""
