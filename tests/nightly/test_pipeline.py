"""The frame: run records, stage order, chunk fan-out and counter, failure, re-run, staleness."""

import datetime as dt

import pytest
from django.core.management import CommandError, call_command

from brokercrm.models import ChunkRun, NightlyRun, PipelineLock, RunStatus, StageRun
from brokercrm.nightly import Stage, StageResult
from brokercrm.nightly.chunks import client_id_ranges
from brokercrm.nightly.orchestration import chunk_execute, nightly_run_start, stage_execute
from brokercrm.nightly.registry import DuplicateStage, UnknownStage, register_stage, registered_stages
from brokercrm.tasks import nightly, nightly_default_as_of
from tests.segmentation.books import make_clients

pytestmark = pytest.mark.django_db

AS_OF = dt.date(2026, 6, 30)


class Recorder:
    """Stages that record what they were called with, and can be told to fail."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.fail_on: set[tuple] = set()

    def _call(self, *key: object) -> None:
        self.calls.append(key)
        if key in self.fail_on:
            raise RuntimeError(f"injected failure at {key}")

    def first(self, ctx) -> StageResult:
        self._call("first", ctx.as_of)
        return StageResult(rows=7, detail={"hello": "world"})

    def prepare(self, ctx) -> None:
        self._call("prepare", ctx.as_of)

    def chunk(self, ctx, low: int, high: int) -> int:
        self._call("chunk", low, high)
        return high - low + 1

    def finalize(self, ctx) -> StageResult:
        self._call("finalize", ctx.as_of)
        return StageResult()

    def last(self, ctx) -> int:
        self._call("last", ctx.as_of)
        return 1

    def stages(self, *, chunk_size: int = 2, due: bool = True) -> list[Stage]:
        return [
            Stage(name="t_first", position=1, run=self.first),
            Stage(
                name="t_chunked",
                position=2,
                prepare=self.prepare,
                chunk=self.chunk,
                finalize=self.finalize,
                chunk_size=chunk_size,
                is_due=lambda as_of: due,
            ),
            Stage(name="t_last", position=3, run=self.last),
        ]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def test_a_run_goes_through_every_stage_in_order_and_records_it(run_nightly, recorder) -> None:
    # given five clients and chunks of two
    clients = make_clients(5)
    ids = [client.pk for client in clients]
    with registered_stages(*recorder.stages(), only=True):
        # when
        run = run_nightly(AS_OF)
    # then
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.attempt == 1
    assert run.stages == ["t_first", "t_chunked", "t_last"]
    assert run.started_at <= run.finished_at
    names = [call[0] for call in recorder.calls]
    assert names == ["first", "prepare", "chunk", "chunk", "chunk", "finalize", "last"]
    chunks = [call[1:] for call in recorder.calls if call[0] == "chunk"]
    assert chunks == [(ids[0], ids[1]), (ids[2], ids[3]), (ids[4], ids[4])]
    stage_runs = {sr.name: sr for sr in StageRun.objects.filter(run=run)}
    assert stage_runs["t_first"].rows == 7
    assert stage_runs["t_first"].detail == {"hello": "world"}
    assert stage_runs["t_chunked"].rows == 5  # the sum of the chunks' rows
    assert (stage_runs["t_chunked"].chunks_done, stage_runs["t_chunked"].chunks_total) == (3, 3)
    assert all(sr.status == RunStatus.SUCCEEDED for sr in stage_runs.values())
    assert ChunkRun.objects.filter(stage_run=stage_runs["t_chunked"], status=RunStatus.SUCCEEDED).count() == 3
    assert PipelineLock.objects.get(name="nightly").run is None


def test_a_failing_chunk_fails_the_run_records_why_and_never_finalizes(run_nightly, recorder) -> None:
    clients = make_clients(4)
    recorder.fail_on.add(("chunk", clients[2].pk, clients[3].pk))
    with registered_stages(*recorder.stages(), only=True):
        run = run_nightly(AS_OF)
    assert run.status == RunStatus.FAILED
    assert "injected failure" in run.error
    assert "t_chunked" in run.error
    names = [call[0] for call in recorder.calls]
    assert "finalize" not in names
    assert "last" not in names
    stage_run = StageRun.objects.get(run=run, name="t_chunked")
    assert stage_run.status == RunStatus.FAILED
    assert "injected failure" in stage_run.error
    assert stage_run.chunks_done < stage_run.chunks_total
    failed_chunk = ChunkRun.objects.get(stage_run=stage_run, status=RunStatus.FAILED)
    assert failed_chunk.client_id_from == clients[2].pk
    assert StageRun.objects.get(run=run, name="t_last").status == RunStatus.PENDING
    assert PipelineLock.objects.get(name="nightly").run is None


def test_a_failed_run_can_be_run_again_and_keeps_the_first_attempts_record(run_nightly, recorder) -> None:
    make_clients(3)
    recorder.fail_on.add(("first", AS_OF))
    with registered_stages(*recorder.stages(), only=True):
        failed = run_nightly(AS_OF)
        recorder.fail_on.clear()
        rerun = run_nightly(AS_OF)
    assert failed.status == RunStatus.FAILED
    assert rerun.pk == failed.pk
    assert rerun.status == RunStatus.SUCCEEDED
    assert rerun.attempt == 2
    assert rerun.error == ""
    first_attempt = StageRun.objects.get(run=rerun, attempt=1, name="t_first")
    assert first_attempt.status == RunStatus.FAILED
    assert "injected failure" in first_attempt.error
    assert StageRun.objects.filter(run=rerun, attempt=2, status=RunStatus.SUCCEEDED).count() == 3


def test_a_stage_that_is_not_due_is_skipped_unless_named(run_nightly, recorder) -> None:
    make_clients(2)
    with registered_stages(*recorder.stages(due=False), only=True):
        run = run_nightly(AS_OF)
        assert StageRun.objects.get(run=run, attempt=1, name="t_chunked").status == RunStatus.SKIPPED
        assert [call[0] for call in recorder.calls] == ["first", "last"]
        recorder.calls.clear()
        named = run_nightly(AS_OF, stages=["t_chunked"])
    assert named.status == RunStatus.SUCCEEDED
    assert named.stages == ["t_chunked"]
    assert [call[0] for call in recorder.calls] == ["prepare", "chunk", "finalize"]


def test_the_lock_refuses_a_second_run_while_one_is_running(run_nightly, recorder) -> None:
    from brokercrm.nightly.lock import PipelineBusy

    with registered_stages(*recorder.stages(), only=True):
        # a run that has been started but whose tasks have not run yet holds the lock
        first = nightly_run_start(as_of=AS_OF, trigger="test")
        assert PipelineLock.objects.get(name="nightly").run_id == first.pk
        with pytest.raises(PipelineBusy, match="holds the lock"):
            nightly_run_start(as_of=AS_OF + dt.timedelta(days=1), trigger="test")
        with pytest.raises(PipelineBusy):
            nightly_run_start(as_of=AS_OF, trigger="test")
        # the refused start left nothing behind, and the running attempt is untouched
        assert list(NightlyRun.objects.values_list("as_of", "attempt", "status")) == [(AS_OF, 1, RunStatus.RUNNING)]


def test_a_stale_lock_is_taken_over_and_its_run_marked_abandoned(settings, recorder) -> None:
    from django.utils import timezone

    settings.NIGHTLY_LOCK_TTL_MINUTES = 30
    with registered_stages(*recorder.stages(), only=True):
        first = nightly_run_start(as_of=AS_OF, trigger="test")
        PipelineLock.objects.filter(name="nightly").update(heartbeat_at=timezone.now() - dt.timedelta(minutes=31))
        second = nightly_run_start(as_of=AS_OF + dt.timedelta(days=1), trigger="test")
    first.refresh_from_db()
    assert PipelineLock.objects.get(name="nightly").run_id == second.pk
    assert first.status == RunStatus.FAILED
    assert "Abandoned" in first.error


def test_tasks_of_a_superseded_attempt_do_nothing(recorder) -> None:
    make_clients(2)
    with registered_stages(*recorder.stages(), only=True):
        run = nightly_run_start(as_of=AS_OF, trigger="test")
        # the run is restarted (attempt 2) before attempt 1's tasks were delivered
        NightlyRun.objects.filter(pk=run.pk).update(attempt=2)
        assert stage_execute(run.pk, 1, 0) == "stale"
    assert recorder.calls == []


def test_a_chunk_delivered_twice_is_counted_once(recorder, django_capture_on_commit_callbacks) -> None:
    make_clients(4)
    with registered_stages(*recorder.stages(), only=True):
        with django_capture_on_commit_callbacks(execute=False):
            run = nightly_run_start(as_of=AS_OF, trigger="test")
        stage_execute(run.pk, run.attempt, 0)
        with django_capture_on_commit_callbacks(execute=False) as sent:
            assert stage_execute(run.pk, run.attempt, 1) == "dispatched"
        assert len(sent) == 1  # the group of chunks, sent on commit
        chunk = ChunkRun.objects.order_by("index").first()
        with django_capture_on_commit_callbacks(execute=False) as finalizers:
            chunk_execute(run.pk, run.attempt, 1, chunk.pk)
            chunk_execute(run.pk, run.attempt, 1, chunk.pk)  # redelivered (acks_late)
        assert finalizers == []
        stage_run = StageRun.objects.get(run=run, name="t_chunked")
    assert (stage_run.chunks_done, stage_run.chunks_total) == (1, 2)
    assert stage_run.rows == 2
    assert [call[0] for call in recorder.calls].count("chunk") == 1


def test_only_the_last_chunk_sends_the_finalize_step(recorder, django_capture_on_commit_callbacks) -> None:
    make_clients(6)
    with registered_stages(*recorder.stages(), only=True):
        with django_capture_on_commit_callbacks(execute=False):
            run = nightly_run_start(as_of=AS_OF, trigger="test")
        stage_execute(run.pk, run.attempt, 0)
        with django_capture_on_commit_callbacks(execute=False):
            stage_execute(run.pk, run.attempt, 1)
        sends = []
        for chunk in ChunkRun.objects.order_by("-index"):  # any order
            with django_capture_on_commit_callbacks(execute=False) as sent:
                chunk_execute(run.pk, run.attempt, 1, chunk.pk)
            sends.append(len(sent))
    assert sends == [0, 0, 1]


def test_client_id_ranges_cover_every_client_in_even_chunks() -> None:
    clients = make_clients(7)
    ids = [client.pk for client in clients]
    assert client_id_ranges(3) == [(ids[0], ids[2]), (ids[3], ids[5]), (ids[6], ids[6])]
    assert client_id_ranges(100) == [(ids[0], ids[6])]


def test_client_id_ranges_of_an_empty_book() -> None:
    assert client_id_ranges(10) == []


def test_stage_registry_rejects_unknown_and_duplicate_names(recorder) -> None:
    with registered_stages(*recorder.stages(), only=True):
        with pytest.raises(UnknownStage, match="t_first"):
            nightly_run_start(as_of=AS_OF, stages=["nope"])
        with pytest.raises(DuplicateStage):
            register_stage(Stage(name="t_first", position=9, run=recorder.last))
    with pytest.raises(ValueError, match="exactly one"):
        Stage(name="bad", position=1)


def test_segmentation_registers_its_stages_in_order() -> None:
    from brokercrm.nightly.registry import all_stages

    names = [stage.name for stage in all_stages()]
    assert names.index("rollup") < names.index("tiers") < names.index("reactivation") < names.index("needs")


@pytest.mark.django_db(transaction=True)
def test_run_nightly_command_runs_a_date_and_reports_each_stage(recorder) -> None:
    from io import StringIO

    # transaction=True: the command commits as in production, so eager tasks run inline
    make_clients(2)
    out = StringIO()
    with registered_stages(*recorder.stages(), only=True):
        call_command("run_nightly", "--as-of", "2026-06-30", stdout=out)
    run = NightlyRun.objects.get(as_of=AS_OF)
    assert run.status == RunStatus.SUCCEEDED
    text = out.getvalue()
    assert "Run for 2026-06-30, attempt 1: succeeded" in text
    assert "t_chunked" in text


def test_run_nightly_command_rejects_bad_input(recorder) -> None:
    with registered_stages(*recorder.stages(), only=True):
        with pytest.raises(CommandError, match="not a date"):
            call_command("run_nightly", "--as-of", "30/06/2026")
        with pytest.raises(CommandError, match="Unknown nightly stage"):
            call_command("run_nightly", "--as-of", "2026-06-30", "--stage", "nope")


@pytest.mark.django_db(transaction=True)
def test_run_nightly_command_fails_loudly_when_the_run_fails(recorder) -> None:
    make_clients(1)
    recorder.fail_on.add(("last", AS_OF))
    with registered_stages(*recorder.stages(), only=True), pytest.raises(CommandError, match="failed"):
        call_command("run_nightly", "--as-of", "2026-06-30")
    assert NightlyRun.objects.get(as_of=AS_OF).status == RunStatus.FAILED


def test_beat_task_runs_yesterday_in_exchange_time(recorder, django_capture_on_commit_callbacks) -> None:
    # 01:30 on 1 July in Shanghai is still 30 June in UTC: the date must come from exchange time
    now = dt.datetime(2026, 6, 30, 17, 30, tzinfo=dt.UTC)
    assert nightly_default_as_of(now) == dt.date(2026, 6, 30)
    with registered_stages(*recorder.stages(), only=True), django_capture_on_commit_callbacks(execute=True):
        assert nightly("2026-06-29").startswith("started 2026-06-29")
        run = NightlyRun.objects.get(as_of=dt.date(2026, 6, 29))
        assert run.trigger == NightlyRun.Trigger.BEAT
        # a second start while the first holds the lock is refused, not raised
        PipelineLock.objects.filter(name="nightly").update(run=run)
        assert nightly("2026-06-30") == "busy"
