"""Every ``ivr`` command reports a settings or database problem as one line on stderr and exits 1.

Once as the operator runs them (``python -m ivr.cli`` in subprocesses, several at a time), then
in-process through the same ``main`` for each kind of problem (quicker: one import for all).
"""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from live import ivr, ivr_env

import ivr.cli as cli_module
from ivr.cli import main
from ivr.outbox import engine

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "billing" / "data" / "accounts_sample.csv"

# The commands issue 14 names, the long-running processes and the import. ``worker`` (without
# --once), ``agents callbacks`` and ``serve`` would run for ever if they did not refuse at start.
COMMANDS = [
    ("worker", "--once"),
    ("db", "upgrade"),
    ("reminders", "send"),
    ("payments", "export"),
    ("agents", "list"),
    ("accounts", "import", str(SAMPLE)),
    ("serve", "--port", "0"),
    ("worker",),
    ("agents", "callbacks"),
]
UNREACHABLE = "postgresql+psycopg://nobody:hunter2-password@127.0.0.1:1/none"


def failures(answers, *, must_name: list[str], must_not_show: list[str] = ()) -> dict[str, str]:
    """Why each ``(exit status, stdout, stderr)`` is not one clear error line with status 1 (empty: none)."""
    wrong = {}
    for name, (status, stdout, stderr) in answers.items():
        lines = stderr.splitlines()
        if status != 1:
            wrong[name] = f"exit status {status}: {stderr[:300]!r}"
        elif len(lines) != 1 or "Traceback" in stderr:
            wrong[name] = f"{len(lines)} lines on stderr: {stderr[:300]!r}"
        elif not lines[0].startswith("Error: "):
            wrong[name] = f"not an error line: {lines[0]!r}"
        elif missing := [word for word in must_name if word not in lines[0]]:
            wrong[name] = f"does not name {missing}: {lines[0]!r}"
        elif shown := [word for word in must_not_show if word in stdout + stderr]:
            wrong[name] = f"shows {shown}: {lines[0]!r}"
    return wrong


@pytest.fixture
def in_process(monkeypatch):
    """Run commands through ``main`` in this process; serve and the worker's loop may not really start."""

    def refuse(*args, **kwargs):
        raise AssertionError("the command went on to start despite the problem")

    monkeypatch.setattr(cli_module.os, "execve", refuse)
    monkeypatch.setattr(engine, "run_forever", refuse)

    def run(commands, env):
        answers = {}
        for words in commands:
            result = CliRunner().invoke(main, list(words), env=env)
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                raise result.exception  # a traceback the operator would have seen
            answers[" ".join(words[:2])] = (result.exit_code, result.stdout, result.stderr)
        return answers

    return run


def test_an_unreachable_database_is_one_line_naming_host_and_name_never_the_password():
    commands = [*COMMANDS, ("demo", "--port", "0")]  # ivr demo migrates the database before starting anything

    with ThreadPoolExecutor(max_workers=3) as pool:
        done = pool.map(lambda words: ivr(*words, env=ivr_env(UNREACHABLE), timeout=90), commands)
        answers = {" ".join(w[:2]): (r.returncode, r.stdout, r.stderr) for w, r in zip(commands, done, strict=True)}

    assert failures(
        answers,
        must_name=["database postgresql 127.0.0.1:1/none", "Connection refused"],
        must_not_show=["hunter2-password", "nobody"],
    ) == {}


def test_a_database_without_tables_says_to_run_db_upgrade(database_url, in_process):
    answers = in_process([words for words in COMMANDS if words[0] != "db"], ivr_env(database_url))

    assert failures(answers, must_name=["run `ivr db upgrade`"]) == {}
    # A command that queries a table names it; serve and the worker check them all before starting.
    assert "has no table agents:" in answers["agents list"][2]
    assert "has none of this service's tables yet" in answers["serve --port"][2]


def test_production_refusals_are_each_named_in_one_line_without_secret_values(in_process):
    env = ivr_env(
        "sqlite:///instance/ivr.sqlite3",
        IVR_ENV="production",
        PAYMENT_GATEWAY="",  # production's own choice, not the sandbox the test environment picks
        SMS_SENDER="",
        PUBLIC_BASE_URL="http://pay.example.coop",
        SECRET_KEY="short-secret-value",
        STRIPE_SECRET_KEY="sk_live_not_to_be_shown",
    )

    answers = in_process(COMMANDS, env)

    assert failures(
        answers,
        must_name=[
            "DATABASE_URL is SQLite",
            "PUBLIC_BASE_URL must start with https://",
            "SECRET_KEY must be at least 32 characters",
            "TWILIO_AUTH_TOKEN",  # the missing secrets in the same line
            "STRIPE_WEBHOOK_SECRET",
        ],
        must_not_show=["sk_live_not_to_be_shown", "short-secret-value"],
    ) == {}


def test_a_bad_value_is_named_by_every_command(in_process):
    env = ivr_env(UNREACHABLE, PAYMENT_GATEWAY="paypal", KEEPALIVE_SECONDS="soon")

    answers = in_process(COMMANDS, env)

    assert failures(
        answers, must_name=["PAYMENT_GATEWAY must be 'stripe' or 'sandbox', not 'paypal'", "KEEPALIVE_SECONDS"]
    ) == {}


def test_a_database_url_sqlalchemy_cannot_use_is_named_without_its_password(in_process):
    answers = in_process([("agents", "list"), ("db", "upgrade")], ivr_env("mssql://sa:hunter2-password@db/ivr"))

    assert failures(
        answers, must_name=["DATABASE_URL is not a database URL this service can use"], must_not_show=["hunter2"]
    ) == {}


def test_a_missing_column_says_the_database_is_older_than_the_release(database_url, in_process):
    # A table as an older release made it: the query names a column it lacks.
    db_engine = sa.create_engine(database_url)
    with db_engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE agents (id INTEGER PRIMARY KEY)"))
    try:
        answers = in_process([("agents", "list")], ivr_env(database_url))
    finally:
        with db_engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE agents"))
        db_engine.dispose()

    assert failures(answers, must_name=["is older than this release (no column agents.", "run `ivr db upgrade`"]) == {}


def test_usage_mistakes_keep_exit_status_2(in_process):
    result = CliRunner().invoke(main, ["worker", "--poll", "often"], env=ivr_env(UNREACHABLE))

    assert result.exit_code == 2 and "Invalid value for '--poll'" in result.stderr


def test_the_cli_module_runs_as_ivr():
    # ``python -m ivr.cli`` (tests, the demo's processes) shows the same name as the installed script.
    result = ivr("--help", env=ivr_env(UNREACHABLE))

    assert result.returncode == 0 and result.stdout.startswith("Usage: ivr ")
