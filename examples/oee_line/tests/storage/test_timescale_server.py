"""The TimescaleDB test server itself (scripts/timescale/server.mjs): what psycopg sends it comes back whole.

PGlite 0.3 given many extended-protocol messages in one call answered only the first two hundred or so of some
``executemany`` pipelines and never sent their ReadyForQuery, so the client waited until pytest's timeout (a
CI run at d53cd71, in oee_line's ``refresh_percentiles``). Which pipelines depended on how the bytes fell into
TCP chunks, so the first test sweeps the statement's length. The server now gives PGlite one message a call;
these fail by the timeout if that regresses.
"""

from __future__ import annotations

import random

import psycopg
import pytest
from oee_line.storage.timescale_server import TimescaleServer

pytestmark = [pytest.mark.servers, pytest.mark.timeout(120)]

ROWS = 1_000


def _connect(server: TimescaleServer) -> psycopg.Connection:
    return psycopg.connect(host=server.host, port=server.port, user="postgres", password="postgres",
                           dbname="postgres", sslmode="disable", prepare_threshold=None)


def test_executemany_pipelines_of_a_thousand_updates_are_answered_whatever_their_length(
        timescale_server: TimescaleServer) -> None:
    rng = random.Random(7)
    with _connect(timescale_server) as conn, conn.cursor() as cur:
        for pad in range(0, 24, 3):  # the old server hung at a table named "r"; at "pipeline_probe" it did not
            table = "r" + "_" * pad
            cur.execute(f"CREATE TABLE {table} (m text, k text, b double precision, p50 double precision, "
                        "p95 double precision, PRIMARY KEY (m, k, b))")
            cur.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s, NULL, NULL)",
                            [("M1", "Temp", float(b)) for b in range(ROWS)])
            for round_ in range(3):  # the shape of oee_line.storage.ranks.SET_RANKS
                ranks = [{"p50": rng.random(), "p95": rng.random() * 1.5, "m": "M1", "k": "Temp", "b": float(b)}
                         for b in range(ROWS)]
                cur.executemany(f"UPDATE {table} SET p50 = %(p50)s, p95 = %(p95)s "
                                "WHERE m = %(m)s AND k = %(k)s AND b = %(b)s", ranks)
                conn.commit()
                count, total = cur.execute(f"SELECT count(*), sum(p50) FROM {table}").fetchone()
                assert (count, total) == (ROWS, pytest.approx(sum(r["p50"] for r in ranks))), (table, round_)
            cur.execute(f"DROP TABLE {table}")


def test_a_message_larger_than_a_tcp_chunk_arrives_whole(timescale_server: TimescaleServer) -> None:
    values = [float(i) for i in range(20_000)]  # a Bind of ~200 kB, read by the server in several chunks
    with _connect(timescale_server) as conn:
        got = conn.execute("SELECT cardinality(%s::float8[]), (%s::float8[])[20000]", [values, values]).fetchone()
    assert got == (20_000, 19_999.0)


def test_a_client_gets_no_debug_notices(timescale_server: TimescaleServer) -> None:
    # PGlite starts at client_min_messages debug3: two DEBUG notices for every Parse and Bind, in every pipeline
    notices: list[str] = []
    with _connect(timescale_server) as conn:
        conn.add_notice_handler(lambda diag: notices.append(f"{diag.severity}: {diag.message_primary}"))
        assert conn.execute("SELECT %s::int", [1]).fetchone() == (1,)
        assert conn.execute("SHOW client_min_messages").fetchone() == ("notice",)
    assert notices == []
