"""Shared fixtures: a fresh database per test on SQLite and PostgreSQL, and a clean environment."""

import os
import uuid

# prometheus-client chooses multiprocess mode when it is first imported: a developer's shell that
# has this set must not put the test process in it (the tests that need it set it themselves).
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ivr.extensions import db

# The suite runs every database test on both engines; IVR_TEST_DATABASES=sqlite narrows it locally.
DATABASES = [
    name.strip()
    for name in os.environ.get("IVR_TEST_DATABASES", "sqlite,postgresql").split(",")
    if name.strip()
]
PG_ADMIN_URL = os.environ.get(
    "IVR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    """Tests never see the developer's real credentials or database."""
    for name in list(os.environ):
        if name.startswith(("TWILIO_", "STRIPE_", "IVR_ENV", "PAYMENT_GATEWAY", "SMS_SENDER")) or name in {
            "DATABASE_URL",
            "PUBLIC_BASE_URL",
            "AGENT_TRANSFER_NUMBER",
            "ORG_NAME",
            "ORG_TIMEZONE",
            "SECRET_KEY",
            "METRICS_TOKEN",
            "CONVENIENCE_FEE_CENTS",
        }:
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def postgres_database():
    """A throw-away PostgreSQL database for this test session (dropped at the end)."""
    name = f"ivr_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path):
    """An empty database URL, once per engine in ``DATABASES``."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite3'}"
        return
    url = request.getfixturevalue("postgres_database")
    engine = sa.create_engine(url)
    db.metadata.drop_all(engine)
    engine.dispose()
    yield url


@pytest.fixture
def session(database_url):
    """A plain SQLAlchemy session over a freshly created schema (no Flask app needed)."""
    engine = sa.create_engine(database_url)
    import ivr.models  # noqa: F401  (registers every table on the metadata)

    db.metadata.create_all(engine)
    with Session(engine, expire_on_commit=False) as s:
        yield s
    db.metadata.drop_all(engine)
    engine.dispose()


# --- the app, a signed caller, and Stripe at the HTTP level ---------------------------------------

ORG = "Riverbend Electric Cooperative"


@pytest.fixture
def app_config(database_url):
    """Overrides for ``create_app``; tests may change them before ``app`` is built."""
    from helpers import ACCOUNT_SID, BASE, TOKEN

    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "PUBLIC_BASE_URL": BASE,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_FROM_NUMBER": "+15005550006",
        "ORG_NAME": ORG,
        "PAYMENT_GATEWAY": "stripe",
        "STRIPE_SECRET_KEY": "sk_test_not_a_real_key",
        "STRIPE_WEBHOOK_SECRET": "whsec_test_secret",
        "SMS_SENDER": "sandbox",
    }


@pytest.fixture
def app(app_config):
    """The real app over a fresh schema on each database."""
    from ivr import create_app

    cfg = dict(app_config)
    if cfg["PAYMENT_GATEWAY"] == "stripe" and "GATEWAY" not in cfg:
        # No retries in tests: a Stripe 500 is exactly one request, which the assertions count.
        from payments.stripe_gateway import StripeGateway

        cfg["GATEWAY"] = StripeGateway(
            cfg["STRIPE_SECRET_KEY"], webhook_secret=cfg["STRIPE_WEBHOOK_SECRET"], max_network_retries=0
        )
    app = create_app(cfg)
    import ivr.all_models  # noqa: F401

    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.drop_all()
        for engine in db.engines.values():
            engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def stripe_api():
    """Stripe's API faked at the HTTP layer (responses), stateful and idempotent like the real one."""
    import responses
    from helpers import StripeFake

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield StripeFake(rsps)


@pytest.fixture
def make_account(app):
    """Create an account: ``make_account(account_number="12345001", phone="+12025550143", ...)``."""
    from datetime import date

    from ivr.models import Account

    def make(**fields):
        values = {
            "account_number": "12345001",
            "name": "Pat Member",
            "phone": "+12025550143",
            "balance_cents": 12345,
            "past_due_cents": 0,
            "due_date": date(2026, 12, 5),
            "language": "en",
            "status": "active",
            "zip": "20005",  # helpers.ZIP: what a caller identified by caller ID keys
        }
        values.update(fields)
        with app.app_context():
            account = Account(**values)
            db.session.add(account)
            db.session.commit()
            return account.id

    return make
