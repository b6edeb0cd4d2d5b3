"""Independent parts of a stage at once, each in a thread with its own database connection.

A stage's reads and writes wait on PostgreSQL while its numpy work waits on nothing: run side by
side, the database works on one part while Python computes another (the machines here have two
cores). Only on PostgreSQL and outside a transaction (the nightly stages): another connection
would not see the rows of an open transaction (the tests run stages inside one), so there the
parts run one by one, in order, on the caller's connection.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.db import connection, connections

from brokercrm.nightly.bulk import no_jit

T = TypeVar("T")


def parallel_possible() -> bool:
    """Whether parts may run on other connections: PostgreSQL, and no transaction open here."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def run_parallel(tasks: dict[str, Callable[[], T]], *, workers: int | None = None) -> dict[str, T]:
    """{name: task()}: every task at once in its own thread (at most `workers` at a time; None: as
    many as tasks), or one by one when that is not possible (parallel_possible) or `workers` <= 1.
    The first failure is raised once every task has ended; each thread closes its connection."""
    workers = len(tasks) if workers is None else workers
    if workers <= 1 or len(tasks) < 2 or not parallel_possible():
        return {name: task() for name, task in tasks.items()}

    def run(task: Callable[[], T]) -> T:
        try:
            with no_jit():
                return task()
        finally:
            connections.close_all()  # this thread's connection

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {name: pool.submit(run, task) for name, task in tasks.items()}
        return {name: future.result() for name, future in futures.items()}
