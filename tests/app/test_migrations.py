"""``ivr db upgrade`` builds the schema the models describe, on both databases."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import ivr.all_models  # noqa: F401
from ivr.extensions import db
from ivr.migrate import upgrade


def test_upgrade_creates_exactly_the_models_schema(database_url):
    upgrade(database_url)
    upgrade(database_url)  # running it again is harmless
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
        assert diff == [], "models and migrations disagree; run scripts/new-migration"
    finally:
        with engine.begin() as conn:
            db.metadata.drop_all(conn)
            conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        engine.dispose()
