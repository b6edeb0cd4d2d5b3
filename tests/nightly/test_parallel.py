"""brokercrm.nightly.parallel: parts of a stage at once on their own connections, outside a
transaction only."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from brokercrm.nightly.parallel import parallel_possible, run_parallel


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_each_part_runs_in_a_thread_on_its_own_connection() -> None:
    main = (threading.get_ident(), _backend_pid())
    assert parallel_possible()
    both = threading.Barrier(2, timeout=10)  # each part waits for the other: they must overlap

    def part() -> tuple[int, int]:
        both.wait()
        return threading.get_ident(), _backend_pid()

    result = run_parallel({"a": part, "b": part})
    assert set(result) == {"a", "b"}
    threads = {result["a"][0], result["b"][0]}
    pids = {result["a"][1], result["b"][1]}
    assert len(threads) == 2
    assert main[0] not in threads
    assert len(pids) == 2
    assert main[1] not in pids


@pytest.mark.django_db
def test_inside_a_transaction_the_parts_run_in_order_on_this_connection() -> None:
    order = []

    def part(name: str):
        def run() -> tuple[str, int]:
            order.append(name)
            return name, threading.get_ident()

        return run

    assert not parallel_possible()  # the test's transaction (or SQLite)
    result = run_parallel({"first": part("first"), "second": part("second")})
    assert order == ["first", "second"]
    assert result == {"first": ("first", threading.get_ident()), "second": ("second", threading.get_ident())}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_failure_is_raised_after_every_part_has_ended() -> None:
    ended = threading.Event()

    def fails() -> None:
        raise ValueError("part failed")

    def slow() -> None:
        threading.Event().wait(0.3)
        ended.set()

    with pytest.raises(ValueError, match="part failed"):
        run_parallel({"fails": fails, "slow": slow})
    assert ended.is_set()


def test_one_worker_runs_the_parts_one_by_one() -> None:
    idents = run_parallel({"a": threading.get_ident, "b": threading.get_ident}, workers=1)
    assert idents == {"a": threading.get_ident(), "b": threading.get_ident()}
