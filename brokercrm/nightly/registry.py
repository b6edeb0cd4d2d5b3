"""The stage registry: the apps' nightly stages, in the order they run.

An app contributes stages from a module named `stages` (e.g. `segmentation/stages.py`) that
calls `register_stage(Stage(...))` at import time; the registry imports every installed
app's `stages` module the first time it is asked for a stage (like admin autodiscovery), so
web processes, workers and the management command all see the same list.

Two kinds of stage:
- a *global* stage has `run(ctx)`: one task does the whole stage (the rollup, the tier ranking);
- a *per-client* stage has `chunk(ctx, client_id_from, client_id_to)`: the clients are split
  into id ranges sent as a Celery group, so more workers make the night shorter. Optional
  `prepare(ctx)` runs before the chunks are sent and `finalize(ctx)` after the last chunk
  (typically: swap the date's results in); `cleanup(ctx)` runs after finalize or a failure.

Positions leave gaps for later issues: rollup 100, segment 200-299, score 300, comply 400,
act 500, measure 600.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.utils.module_loading import autodiscover_modules


@dataclass(frozen=True)
class StageContext:
    """What a stage function is told about the run it works for."""

    run_id: int
    attempt: int
    stage_run_id: int
    stage: str
    as_of: dt.date
    forced: bool = False  # the stage was named explicitly (run_nightly --stage NAME)


@dataclass(frozen=True)
class StageResult:
    """What a stage reports back: rows written and any figures worth keeping on the run record."""

    rows: int = 0
    detail: dict = field(default_factory=dict)


StageFn = Callable[[StageContext], "StageResult | int | None"]
ChunkFn = Callable[[StageContext, int, int], int]


@dataclass(frozen=True)
class Stage:
    name: str
    position: int
    description: str = ""
    run: StageFn | None = None
    prepare: Callable[[StageContext], None] | None = None
    chunk: ChunkFn | None = None
    finalize: StageFn | None = None
    cleanup: Callable[[StageContext], None] | None = None
    is_due: Callable[[dt.date], bool] | None = None
    chunk_size: int | None = None

    def __post_init__(self) -> None:
        if (self.run is None) == (self.chunk is None):
            raise ValueError(f"Stage {self.name!r} needs exactly one of run= (global) or chunk= (per client).")
        if self.run is not None and (self.prepare or self.finalize):
            raise ValueError(f"Stage {self.name!r}: prepare/finalize belong to per-client stages.")

    @property
    def per_client(self) -> bool:
        return self.chunk is not None

    def due_on(self, as_of: dt.date) -> bool:
        return self.is_due is None or self.is_due(as_of)


_stages: dict[str, Stage] = {}
_lock = threading.Lock()
_discovered = False


class UnknownStage(ValueError):
    MESSAGE = "Unknown nightly stage {name!r}; registered stages: {known}."


class DuplicateStage(ValueError):
    MESSAGE = "A nightly stage named {name!r} is already registered."


def register_stage(stage: Stage) -> Stage:
    """Add `stage` to the registry; a name may be registered once."""
    with _lock:
        existing = _stages.get(stage.name)
        if existing is not None and existing != stage:
            raise DuplicateStage(DuplicateStage.MESSAGE.format(name=stage.name))
        _stages[stage.name] = stage
    return stage


def unregister_stage(name: str) -> None:
    with _lock:
        _stages.pop(name, None)


def _discover() -> None:
    global _discovered
    if not _discovered:
        autodiscover_modules("stages")
        _discovered = True


def all_stages() -> list[Stage]:
    """Every registered stage, in running order."""
    _discover()
    return sorted(_stages.values(), key=lambda stage: (stage.position, stage.name))


def get_stage(name: str) -> Stage:
    _discover()
    try:
        return _stages[name]
    except KeyError:
        known = ", ".join(stage.name for stage in all_stages()) or "none"
        raise UnknownStage(UnknownStage.MESSAGE.format(name=name, known=known)) from None


@contextmanager
def registered_stages(*stages: Stage, only: bool = False) -> Iterator[None]:
    """Temporarily register `stages` (tests); with only=True hide every other stage meanwhile."""
    _discover()
    with _lock:
        saved = dict(_stages)
        if only:
            _stages.clear()
        for stage in stages:
            _stages[stage.name] = stage
    try:
        yield
    finally:
        with _lock:
            _stages.clear()
            _stages.update(saved)
