"""python manage.py run_nightly [--as-of YYYY-MM-DD] [--stage NAME ...] [--wait] [--force-lock]

Runs the nightly pipeline for one as-of date: in-process when Celery is eager (no REDIS_URL),
otherwise by sending the tasks to the workers (add --wait to follow the run to its end).
"""

from __future__ import annotations

import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from brokercrm.celery import app as celery_app
from brokercrm.models import NightlyRun, RunStatus
from brokercrm.nightly.lock import PipelineBusy
from brokercrm.nightly.orchestration import nightly_run_start
from brokercrm.nightly.registry import UnknownStage, all_stages
from brokercrm.tasks import nightly_default_as_of


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--as-of {value!r} is not a date (YYYY-MM-DD).") from None


class Command(BaseCommand):
    help = "Run the nightly pipeline (all stages, or the ones named) for an as-of date."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--as-of", type=_date, help="Business date to process (default: yesterday, exchange time).")
        parser.add_argument(
            "--stage", action="append", dest="stages", metavar="NAME", help="Run only this stage (repeatable)."
        )
        parser.add_argument(
            "--chunk-size", type=int, help="Clients per chunk of per-client stages (default NIGHTLY_CHUNK_SIZE)."
        )
        parser.add_argument("--list", action="store_true", help="List the registered stages and exit.")
        parser.add_argument("--wait", action="store_true", help="With real workers: wait for the run to finish.")
        parser.add_argument("--timeout", type=int, default=6 * 3600, help="Seconds --wait waits (default 6 h).")
        parser.add_argument(
            "--force-lock", action="store_true", help="Take the pipeline lock even if another run holds it."
        )

    def handle(self, *args: object, **options: object) -> None:
        if options["list"]:
            for stage in all_stages():
                kind = "per client" if stage.per_client else "global"
                self.stdout.write(f"{stage.position:>4}  {stage.name:<16} {kind:<10} {stage.description}")
            return
        as_of = options["as_of"] or nightly_default_as_of()
        try:
            run = nightly_run_start(
                as_of=as_of,
                stages=options["stages"],
                trigger=NightlyRun.Trigger.COMMAND,
                force_lock=bool(options["force_lock"]),
                chunk_size=options["chunk_size"],
            )
        except (PipelineBusy, UnknownStage) as exc:
            raise CommandError(str(exc)) from None

        eager = bool(celery_app.conf.task_always_eager)
        if not eager:
            self.stdout.write(f"Run for {as_of} (attempt {run.attempt}) sent to the workers.")
            if not options["wait"]:
                return
            deadline = time.monotonic() + int(options["timeout"])
            while run.status == RunStatus.RUNNING and time.monotonic() < deadline:
                time.sleep(2)
                run.refresh_from_db()
        self._report(run)
        if run.status == RunStatus.FAILED:
            raise CommandError(f"Run for {as_of} failed: {run.error.splitlines()[0] if run.error else ''}")
        if run.status == RunStatus.RUNNING:
            raise CommandError(f"Run for {as_of} still running after {options['timeout']} s.")

    def _report(self, run: NightlyRun) -> None:
        self.stdout.write(f"Run for {run.as_of}, attempt {run.attempt}: {run.status}")
        for stage_run in run.stage_runs.filter(attempt=run.attempt).order_by("position"):
            seconds = stage_run.duration_seconds
            took = f"{seconds:8.2f} s" if seconds is not None else " " * 10
            chunks = f" chunks {stage_run.chunks_done}/{stage_run.chunks_total}" if stage_run.chunks_total else ""
            self.stdout.write(f"  {stage_run.name:<16} {stage_run.status:<10} {took} rows {stage_run.rows}{chunks}")
            if stage_run.error:
                self.stdout.write(self.style.ERROR("    " + stage_run.error.splitlines()[0]))
