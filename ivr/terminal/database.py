"""The database as a command names it (no user, no password) and the check a long-running process makes at start."""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.pool import NullPool


class SchemaMissing(Exception):
    """The database answers but lacks tables this release needs: ``ivr db upgrade`` has not been run."""

    def __init__(self, label: str, tables: Sequence[str], *, none_present: bool = False):
        self.tables = list(tables)
        if none_present:
            what = "none of this service's tables yet"
        else:
            shown = ", ".join(self.tables[:3]) + (f" and {len(self.tables) - 3} more" if len(self.tables) > 3 else "")
            what = f"no {'table' if len(self.tables) == 1 else 'tables'} {shown}"
        super().__init__(f"the database {label} has {what}: run `ivr db upgrade`")


def database_label(url: str) -> str:
    """``postgresql db.internal:5432/ivr`` or ``sqlite /srv/ivr.sqlite3``: enough to tell databases apart, no secret."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return "(DATABASE_URL unreadable)"
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return f"sqlite {parsed.database or ':memory:'}"
    host = parsed.host or "localhost"
    if parsed.port:
        host += f":{parsed.port}"
    return f"{backend} {host}/{parsed.database or ''}"


def check_database(url: str) -> None:
    """Connect once and make sure every table exists, so a process does not start against a database it cannot use.

    :raises sqlalchemy.exc.DBAPIError: the database cannot be reached.
    :raises SchemaMissing: it answers, but ``ivr db upgrade`` has not been run.
    """
    from .. import all_models  # noqa: F401  (every table on the metadata)
    from ..extensions import db

    # No pool: the one connection is closed at once (``ivr serve`` replaces itself with gunicorn next).
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            present = set(sa.inspect(connection).get_table_names())
    finally:
        engine.dispose()
    missing = sorted(set(db.metadata.tables) - present)
    if missing:
        raise SchemaMissing(database_label(url), missing, none_present=len(missing) == len(db.metadata.tables))
