"""Extensions created without an app; ``create_app`` binds them."""

from typing import Any

from flask.sessions import SecureCookieSessionInterface
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

# Named constraints so Alembic migrations are stable on SQLite and PostgreSQL alike.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)

# The one CSRF mechanism of every form and cookie-authenticated call (/agent, /r/<token>, /ops).
# Signed webhooks and the bearer-key agent API are exempted in create_app.
csrf = CSRFProtect()


class CsrfSessionCookie(SecureCookieSessionInterface):
    """Flask's signed session cookie, which here carries only the CSRF secret.

    ``Secure`` follows PUBLIC_BASE_URL at each response (a plain-http local run must get its
    cookie back), and the cookie is re-sent with every page so its lifetime follows the use.
    """

    def get_cookie_secure(self, app):  # type: ignore[no-untyped-def]
        """Secure whenever the public URL is https."""
        return str(app.config.get("PUBLIC_BASE_URL", "")).startswith("https://")

    def should_set_cookie(self, app, session):  # type: ignore[no-untyped-def]
        """Set it whenever it holds something."""
        return bool(session) or super().should_set_cookie(app, session)

# Both pools replace a connection after this long (a server-side idle timeout must not hit it first).
POOL_RECYCLE_SECONDS = 1800

# A second pool on the same database for menu steps' reads and saves of a call's row (ivr.calls).
CALL_ROWS_BIND = "call_rows"


def call_rows_engine_options(url: str) -> dict[str, Any]:
    """Engine options of the ``call_rows`` pool: autocommit, and on PostgreSQL no wait for the WAL flush.

    A step's row records where a menu is; nothing about money ever goes through this pool. If
    PostgreSQL itself crashed, the last few hundred milliseconds of such rows could be lost: the
    caller's next keypress then carries a newer ``seq`` than the row and hears the previous prompt
    again. In exchange a step is not held up by a disk flush (docs/speed.md).
    """
    options: dict[str, Any] = {"url": url, "isolation_level": "AUTOCOMMIT", "pool_recycle": POOL_RECYCLE_SECONDS}
    if url.startswith("postgresql"):
        options["connect_args"] = {"options": "-c synchronous_commit=off"}
    return options


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):  # type: ignore[no-untyped-def]
    """SQLite: wait for locks instead of failing, and let readers run beside one writer (WAL)."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 15000")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()
