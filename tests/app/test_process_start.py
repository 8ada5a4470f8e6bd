"""What ``ivr serve`` and ``ivr worker`` say as they start, and the keep-alive ``ivr serve`` gives gunicorn."""

import http.client
import time

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from live import LiveServer, ivr, ivr_env

import ivr.cli as cli_module
from ivr.cli import main
from ivr.extensions import db


@pytest.fixture
def migrated(database_url):
    """``database_url`` with every table, a password in it on PostgreSQL (trust auth ignores it)."""
    import ivr.all_models  # noqa: F401

    engine = sa.create_engine(database_url)
    db.metadata.create_all(engine)
    engine.dispose()
    url = sa.make_url(database_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(password="not-to-be-shown")
    yield url.render_as_string(hide_password=False)
    engine = sa.create_engine(database_url)
    db.metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture
def exec_calls(monkeypatch):
    """``ivr serve``'s ``os.execve`` into gunicorn, recorded instead of made."""
    calls = []
    monkeypatch.setattr(cli_module.os, "execve", lambda path, args, env: calls.append(args))
    return calls


def expected_database(url: str) -> str:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"database sqlite {parsed.database}"
    return f"database postgresql {parsed.host}:{parsed.port}/{parsed.database}"


def test_serve_says_what_it_uses_once_and_gives_gunicorn_a_keepalive_above_load_balancers(migrated, exec_calls):
    env = ivr_env(migrated)

    result = CliRunner().invoke(main, ["serve", "--port", "8123", "--workers", "3"], env=env)

    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"ivr serve (development): gateway sandbox, SMS sandbox, {expected_database(migrated)}, "
        "listening on 127.0.0.1:8123, 3 processes, keep-alive 75 s\n"
    )
    assert "not-to-be-shown" not in result.output
    [args] = exec_calls
    assert args[args.index("--keep-alive") + 1] == "75"  # above the 60 s idle timeout of ALB and nginx
    assert args[args.index("--workers") + 1] == "3"


def test_keepalive_seconds_is_a_setting(migrated, exec_calls):
    result = CliRunner().invoke(main, ["serve"], env=ivr_env(migrated, KEEPALIVE_SECONDS="350"))

    assert result.exit_code == 0, result.output
    assert "keep-alive 350 s" in result.stderr
    [args] = exec_calls
    assert args[args.index("--keep-alive") + 1] == "350"


def test_worker_says_what_it_uses_then_what_it_sent(migrated):
    result = CliRunner().invoke(main, ["worker", "--once"], env=ivr_env(migrated))

    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"ivr worker (development): gateway sandbox, SMS sandbox, {expected_database(migrated)}, one pass\n"
    )
    assert result.stdout == "Sent 0 texts\nSent 0 status callbacks to agents' systems\n"
    assert "not-to-be-shown" not in result.output


def test_a_connection_left_idle_for_three_seconds_is_still_answered(tmp_path):
    # gunicorn's own keep-alive is 2 s: a load balancer reusing the connection after that got a reset.
    env = ivr_env(f"sqlite:///{tmp_path / 'keepalive.sqlite3'}")
    assert ivr("db", "upgrade", env=env).returncode == 0

    with LiveServer(env) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("GET", "/healthz")
        first = connection.getresponse()
        first.read()
        time.sleep(3)
        connection.request("GET", "/healthz")  # on the same connection
        second = connection.getresponse()
        second.read()
        connection.close()
        output = server.output()

    assert (first.status, second.status) == (200, 200)
    assert output.count("ivr serve (development): gateway sandbox") == 1  # once, not once per process


def test_serve_loads_the_app_once_before_forking_unless_told_not_to(migrated, exec_calls):
    env = ivr_env(migrated)
    assert CliRunner().invoke(main, ["serve"], env=env).exit_code == 0
    assert CliRunner().invoke(main, ["serve", "--no-preload"], env=env).exit_code == 0
    preloaded, not_preloaded = exec_calls
    assert "--preload" in preloaded and "--preload" not in not_preloaded


def test_a_forked_process_never_uses_the_masters_pooled_connections(app):
    from types import SimpleNamespace

    from ivr.monitoring import gunicorn_config

    with app.app_context():
        engine = db.engine
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        assert engine.pool.checkedin() == 1  # the master's connection, kept in its pool
        gunicorn_config.post_fork(SimpleNamespace(app=SimpleNamespace(callable=app)), worker=None)
        assert engine.pool.checkedin() == 0  # the new process opens its own
