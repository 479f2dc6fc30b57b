"""A real deadlock on PostgreSQL (SQLSTATE 40P01), not a stand-in exception: the Transactor's
transaction and a rival session lock two rows in opposite orders; PostgreSQL aborts the Transactor's
(the rival's deadlock_timeout is longer, so the Transactor's session is the one that finds the cycle),
which runs its work again from the start and commits once, after the rival's."""

from __future__ import annotations

import asyncio
import threading

import pytest
import sqlalchemy as sa
from forge_core.storage import create_engine_from_url
from forge_core.tactics import RetryPolicy

from forge_sched.orders.transactions import Conflict, Transactor

pytestmark = pytest.mark.servers

ROWS = sa.text("CREATE TABLE deadlock_probe (id INT PRIMARY KEY, writer TEXT, writes INT NOT NULL DEFAULT 0)")


@pytest.fixture
def engines(postgres_url):
    engine = create_engine_from_url(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS deadlock_probe"))
        conn.execute(ROWS)
        conn.execute(sa.text("INSERT INTO deadlock_probe (id, writer) VALUES (1, ''), (2, '')"))
    rival = create_engine_from_url(postgres_url)
    yield engine, rival
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE deadlock_probe"))
    rival.dispose()
    engine.dispose()


def write(conn: sa.Connection, row: int, writer: str) -> None:
    conn.execute(sa.text("UPDATE deadlock_probe SET writer = :w, writes = writes + 1 WHERE id = :id"),
                 {"w": writer, "id": row})


def test_a_deadlock_is_retried_and_the_transaction_commits_once(engines):
    engine, rival_engine = engines
    tx = Transactor(engine, RetryPolicy(max_attempts=3, initial=0.01, max_backoff=0.05, retry_on=(Conflict,)))
    holds_row_2, tx_holds_row_1 = threading.Event(), threading.Event()
    rival_error: list[BaseException] = []

    def rival() -> None:  # row 2, then row 1: the opposite order
        try:
            with rival_engine.begin() as conn:
                conn.execute(sa.text("SET LOCAL deadlock_timeout = '10s'"))  # the Transactor's session detects
                write(conn, 2, "rival")
                holds_row_2.set()
                tx_holds_row_1.wait(10)
                write(conn, 1, "rival")  # waits for the Transactor's row 1 lock
        except Exception as exc:  # noqa: BLE001 - any failure of the rival is reported by the test below
            rival_error.append(exc)

    attempts: list[int] = []

    def work(conn: sa.Connection) -> str:  # row 1, then row 2
        attempts.append(1)
        write(conn, 1, "tx")
        if len(attempts) == 1:
            tx_holds_row_1.set()
            conn.execute(sa.text("SELECT pg_sleep(0.3)"))  # the rival is now waiting for row 1
        write(conn, 2, "tx")  # the first attempt: waits for the rival's row 2: a deadlock
        return "committed"

    thread = threading.Thread(target=rival)
    thread.start()
    assert holds_row_2.wait(10)
    result = asyncio.run(tx.run(work))
    thread.join(15)
    assert not rival_error, rival_error
    assert result == "committed" and len(attempts) == 2
    assert tx.conflicts == 1 and tx.policy.stats.retries == 1
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT id, writer FROM deadlock_probe")).all())
        writes = conn.execute(sa.text("SELECT sum(writes) FROM deadlock_probe")).scalar()
    # the rival committed first (its row 1 write waited for the abort); the retry wrote both rows after it
    assert rows == {1: "tx", 2: "tx"} and writes == 4, (rows, writes)


def test_the_deadlock_is_what_was_retried(engines):
    """The Conflict the Transactor raised for the lost attempt came from SQLSTATE 40P01."""
    engine, rival_engine = engines
    tx = Transactor(engine, RetryPolicy(max_attempts=1, initial=0.01, retry_on=(Conflict,)))
    holds_row_2, tx_holds_row_1 = threading.Event(), threading.Event()

    def rival() -> None:
        with rival_engine.begin() as conn:
            conn.execute(sa.text("SET LOCAL deadlock_timeout = '10s'"))
            write(conn, 2, "rival")
            holds_row_2.set()
            tx_holds_row_1.wait(10)
            write(conn, 1, "rival")

    def work(conn: sa.Connection) -> None:
        write(conn, 1, "tx")
        tx_holds_row_1.set()
        conn.execute(sa.text("SELECT pg_sleep(0.3)"))
        write(conn, 2, "tx")

    thread = threading.Thread(target=rival)
    thread.start()
    assert holds_row_2.wait(10)
    with pytest.raises(Conflict, match="deadlock detected") as info:
        asyncio.run(tx.run(work))
    thread.join(15)
    cause = info.value.__cause__
    assert getattr(cause.orig, "sqlstate", None) == "40P01"
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT id, writer FROM deadlock_probe")).all())
    assert rows == {1: "rival", 2: "rival"}, "the lost attempt left nothing; the rival's commit stands"
