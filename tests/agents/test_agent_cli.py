"""``ivr agents``: keys are printed once, stored only hashed, and can be rotated or disabled."""

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from live import ivr_env

from ivr.cli import main
from ivr.extensions import db


@pytest.fixture
def env(database_url):
    import ivr.all_models  # noqa: F401

    engine = sa.create_engine(database_url)
    db.metadata.create_all(engine)
    engine.dispose()
    return ivr_env(database_url)


def ivr(*args, env):
    """Run ``ivr ARGS`` as the operator would (stdout and stderr apart)."""
    return CliRunner().invoke(main, list(args), env=env)


@pytest.fixture
def api(database_url):
    """A client of the app on the same database, to try keys against the API."""
    from ivr import create_app

    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "PAYMENT_GATEWAY": "sandbox",
            "SMS_SENDER": "sandbox",
        }
    )
    yield (
        lambda key: (
            app.test_client()
            .get("/api/agent/calls", headers={"Authorization": f"Bearer {key}"})
            .status_code
        )
    )
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_add_rotate_and_disable_an_agent(env, api, database_url):
    added = ivr("agents", "add", "Robin", env=env)
    assert added.exit_code == 0, added.output
    key = added.stdout.strip()
    assert key.startswith("ivrak_") and len(key) > 40
    assert api(key) == 200

    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        stored = " ".join(str(v) for v in conn.execute(sa.text("SELECT * FROM agents")).one())
    engine.dispose()
    assert key not in stored

    duplicate = ivr("agents", "add", "robin", env=env)
    assert duplicate.exit_code == 1 and "already exists" in duplicate.stderr

    rotated = ivr("agents", "rotate", "Robin", env=env)
    new_key = rotated.stdout.strip()
    assert rotated.exit_code == 0 and new_key != key
    assert (api(key), api(new_key)) == (401, 200)

    assert ivr("agents", "disable", "Robin", env=env).exit_code == 0
    assert api(new_key) == 401
    listed = ivr("agents", "list", env=env)
    assert listed.stdout.startswith("Robin\tdisabled")
    assert new_key not in listed.stdout

    audit = ivr("agents", "audit", env=env).stdout
    assert [line.split("\t")[2] for line in audit.splitlines()] == [
        "agent.add",
        "agent.rotate",
        "agent.disable",
    ]
