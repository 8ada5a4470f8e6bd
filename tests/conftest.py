"""Shared fixtures: a fresh database per test on SQLite and PostgreSQL, and a clean environment."""

import os
import uuid

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
