"""Run records of the nightly pipeline, and the lock that keeps two runs from overlapping.

One `NightlyRun` per as-of date. Each time the date is (re-)run its `attempt` goes up and a
fresh set of `StageRun` rows is written for that attempt, so the record of an earlier failed
attempt (and why it failed) survives the re-run. A per-client stage also has one `ChunkRun`
per client-id range it was split into; the chunk rows carry the counter that lets the last
chunk to finish start the next step (no Celery chord: see brokercrm/nightly/orchestration.py).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class RunStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped")


class NightlyRunQuerySet(models.QuerySet):
    def running(self) -> NightlyRunQuerySet:
        return self.filter(status=RunStatus.RUNNING)

    def succeeded(self) -> NightlyRunQuerySet:
        return self.filter(status=RunStatus.SUCCEEDED)


class NightlyRun(models.Model):
    """The pipeline run for one as-of date (the business day whose close it processes)."""

    class Trigger(models.TextChoices):
        BEAT = "beat", _("Celery beat")
        COMMAND = "command", _("Management command")
        API = "api", _("API")
        DEMO = "demo", _("Demo seeder")
        TEST = "test", _("Test")

    as_of = models.DateField(unique=True)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.PENDING)
    attempt = models.PositiveIntegerField(default=0, help_text="Goes up each time the date is started again.")
    stages = models.JSONField(default=list, blank=True, help_text="Stage names of the current attempt, in order.")
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.COMMAND)
    options = models.JSONField(default=dict, blank=True, help_text="Per-attempt options, e.g. chunk_size.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, help_text="Why the current attempt failed, if it did.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = NightlyRunQuerySet.as_manager()

    class Meta:
        verbose_name = _("nightly run")
        verbose_name_plural = _("nightly runs")
        ordering = ["-as_of"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "running", "succeeded", "failed"]), name="nightlyrun_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"nightly {self.as_of} ({self.status})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class StageRun(models.Model):
    """One stage of one attempt of a run: status, timing, row count, error text."""

    run = models.ForeignKey(NightlyRun, on_delete=models.CASCADE, related_name="stage_runs")
    attempt = models.PositiveIntegerField()
    name = models.CharField(max_length=40)
    position = models.PositiveSmallIntegerField(help_text="Order of the stage within the attempt.")
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.PENDING)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    rows = models.BigIntegerField(default=0, help_text="Rows written (or processed) by the stage.")
    chunks_total = models.PositiveIntegerField(default=0)
    chunks_done = models.PositiveIntegerField(default=0)
    detail = models.JSONField(default=dict, blank=True, help_text="Stage-specific figures (e.g. clients per tier).")
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text="Host and process that ran the stage task.")
    finalize_started_at = models.DateTimeField(
        null=True, blank=True, help_text="When a per-client stage's finalize step began (once per attempt)."
    )

    class Meta:
        ordering = ["run", "attempt", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "attempt", "name"], name="stagerun_one_per_attempt"),
            models.CheckConstraint(
                condition=Q(chunks_done__lte=models.F("chunks_total")), name="stagerun_chunks_le_total"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.run.as_of} #{self.attempt} {self.name} ({self.status})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class ChunkRun(models.Model):
    """One client-id range [client_id_from, client_id_to] of a per-client stage."""

    stage_run = models.ForeignKey(StageRun, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    client_id_from = models.BigIntegerField()
    client_id_to = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.PENDING)
    rows = models.BigIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text="Host and process that ran the chunk.")
    error = models.TextField(blank=True)

    class Meta:
        verbose_name = _("chunk run")
        verbose_name_plural = _("chunk runs")
        ordering = ["stage_run", "index"]
        constraints = [
            models.UniqueConstraint(fields=["stage_run", "index"], name="chunkrun_unique_index"),
            models.CheckConstraint(
                condition=Q(client_id_to__gte=models.F("client_id_from")), name="chunkrun_range_ordered"
            ),
        ]

    def __str__(self) -> str:
        return f"chunk {self.index} [{self.client_id_from}, {self.client_id_to}]"


class PipelineLock(models.Model):
    """A named lock held by at most one run.

    Taken with a compare-and-set UPDATE (see brokercrm/nightly/lock.py) that works the same on
    PostgreSQL and SQLite. The holder refreshes `heartbeat_at` as stages and chunks finish; a lock
    whose heartbeat is older than NIGHTLY_LOCK_TTL_MINUTES is treated as abandoned (a worker died
    without releasing it) and may be taken over.
    """

    name = models.CharField(max_length=40, primary_key=True)
    run = models.ForeignKey(NightlyRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    acquired_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("pipeline lock")
        verbose_name_plural = _("pipeline locks")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"lock {self.name} held by {self.run_id or 'nobody'}"
