"""Turn a configuration or database failure into the one line an operator reads instead of a traceback."""

import os
import re

import sqlalchemy as sa

from ..config import ConfigError, database_url
from .database import SchemaMissing, database_label

# What the top-level ``ivr`` group turns into one line; anything else is a bug and keeps its traceback.
PROBLEMS = (ConfigError, SchemaMissing, sa.exc.DBAPIError, sa.exc.ArgumentError)

# sqlite3 and PostgreSQL (SQLSTATE 42P01 undefined_table, 42703 undefined_column) say the same things differently.
_NO_TABLE = re.compile(r'no such table: (\S+)|relation "([^"]+)" does not exist')
_NO_COLUMN = re.compile(r"no such column: (\S+)|column \"?([\w.]+)\"? (?:of relation \"(\w+)\" )?does not exist")


def one_line(exc: BaseException) -> str:
    """The problem in one line, naming the database by host and name only (never a password)."""
    if isinstance(exc, ConfigError | SchemaMissing):
        return _flat(str(exc))
    url = database_url(os.environ)
    label = database_label(url)
    if isinstance(exc, sa.exc.DBAPIError):
        reason = _redact(_first_line(str(exc.orig) if exc.orig is not None else str(exc)), url)
        if match := _NO_TABLE.search(reason):
            return f"the database {label} has no table {match[1] or match[2]}: run `ivr db upgrade`"
        if match := _NO_COLUMN.search(reason):
            column = match[1] or (f"{match[3]}.{match[2]}" if match[3] else match[2])
            return f"the database {label} is older than this release (no column {column}): run `ivr db upgrade`"
        if isinstance(exc, sa.exc.OperationalError):
            return f"cannot use the database {label}: {reason}"
        return f"the database {label} refused a statement: {reason}"
    # ArgumentError: a URL SQLAlchemy cannot read (load_config catches most before they get here).
    return f"DATABASE_URL: {_redact(_first_line(str(exc)), url)}"


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "unknown error")


def _flat(text: str) -> str:
    return " ".join(text.split())


def _redact(text: str, url: str) -> str:
    """Drivers quote host and user, not the password; this makes sure of it."""
    try:
        password = sa.engine.make_url(url).password
    except sa.exc.ArgumentError:
        return text
    return text.replace(str(password), "***") if password else text
