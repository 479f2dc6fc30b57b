"""The real-server helpers start real servers, talk to them, restart them and free their ports."""

from __future__ import annotations

import pytest

from forge_core.testing import (
    PostgresServer,
    RedisServer,
    find_free_port,
    port_free,
    servers,
    which_or_skip,
)

pytestmark = pytest.mark.servers




def test_find_free_port_is_bindable() -> None:
    port = find_free_port()
    assert 1024 <= port <= 65535
    assert port_free(port)


def test_find_free_port_avoids_clients_source_ports_and_its_own_answers() -> None:
    # a port in the ephemeral range can be a client's own source port (a connect to a server not yet
    # listening can connect to itself and hold the port): the ports come from below that range
    low, _ = servers._ephemeral_range()
    ports = [find_free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports), "a port handed out twice in one process"
    assert all(servers._FIXED_PORTS_FROM <= port < low for port in ports), (low, sorted(ports)[-3:])
    assert all(port_free(port) for port in ports[-5:])


def test_find_free_port_falls_back_to_the_os_when_there_is_no_room_below(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servers, "_ephemeral_range", lambda: (1024, 65535))
    port = find_free_port()
    assert port_free(port)
    assert port not in {find_free_port() for _ in range(20)}


def test_which_or_skip_names_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install mosquitto-clients"):
        monkeypatch.setenv("PATH", "/nonexistent")
        monkeypatch.setattr("forge_core.testing.servers._EXTRA_DIRS", [])
        which_or_skip("mosquitto_pub")


def test_which_or_skip_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="install the Debian package 'redis-tools'"):
        monkeypatch.setenv("PATH", "/nonexistent")
        monkeypatch.setattr("forge_core.testing.servers._EXTRA_DIRS", [])
        which_or_skip("redis-cli")


# -- PostgreSQL -------------------------------------------------------------------------------


def test_postgres_query_via_sqlalchemy(postgres_url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (x int)"))
            conn.execute(sa.text("INSERT INTO t VALUES (41), (1)"))
            assert conn.execute(sa.text("SELECT sum(x) FROM t")).scalar_one() == 42
            assert conn.execute(sa.text("SHOW fsync")).scalar_one() == "off"
    finally:
        engine.dispose()


def test_postgres_url_is_fresh_per_test(postgres_url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(sa.text("SELECT count(*) FROM pg_tables WHERE schemaname='public'"))
            assert tables.scalar_one() == 0
    finally:
        engine.dispose()


def test_postgres_restart_keeps_data_and_stop_frees_port() -> None:
    import psycopg

    with PostgresServer() as pg:
        assert pg.url.startswith(f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}/")
        url = pg.create_database("kept")
        assert url.endswith("/kept")
        with psycopg.connect(pg.dsn("kept"), autocommit=True) as conn:
            conn.execute("CREATE TABLE t (x int)")
            conn.execute("INSERT INTO t VALUES (7)")
        port = pg.port
        pg.stop()
        assert port_free(port)
        pg.start()
        assert pg.port == port
        with psycopg.connect(pg.dsn("kept")) as conn:
            assert conn.execute("SELECT x FROM t").fetchone() == (7,)
    assert port_free(port)
    assert not pg.dir.exists()


def test_postgres_rejects_bad_database_name(postgres_server: PostgresServer) -> None:
    with pytest.raises(ValueError, match="invalid database name"):
        postgres_server.create_database("drop table; --")


# -- Redis ------------------------------------------------------------------------------------


def test_redis_ping_set_get(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        assert client.ping()
        client.set("k", "v")
        assert client.get("k") == b"v"
    finally:
        client.close()


def test_redis_url_is_flushed_per_test(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        assert client.get("k") is None
    finally:
        client.close()


def test_redis_kill_and_restart_same_port() -> None:
    import redis

    with RedisServer() as server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        port = server.port
        client = redis.Redis.from_url(server.url, socket_timeout=1)
        client.set("a", "1")
        server.kill()
        assert not server.running
        with pytest.raises(redis.ConnectionError):
            client.ping()
        server.restart()
        assert server.port == port
        assert client.ping()
        assert client.get("a") is None  # no persistence: a crash loses everything
        client.close()
    assert port_free(port)
