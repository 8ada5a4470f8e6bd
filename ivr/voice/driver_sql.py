"""The hot path's reads and saves outside a transaction: a menu step's own statements.

A ``DriverStatement`` runs a Core statement straight on the database driver's cursor. SQLAlchemy
still writes the SQL (compiled once per dialect) and converts every value with the column types'
own processors; what is skipped is its per-execution machinery (execution context, result
objects, events), which for a menu step's two statements cost more than the database itself
once the process had been idle for a moment (README, "Speed"). Such statements run autocommitted
on the ``call_rows`` pool; inside a transaction everything goes through the session as usual.
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from flask import Flask, g

from ..extensions import CALL_ROWS_BIND, db


class DriverStatement:
    """``statement`` (a select or update with named ``bindparam``s) ready to run on a DBAPI cursor."""

    def __init__(self, statement: sa.Select[Any] | sa.Update) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, str, str], tuple[Any, ...]] = {}

    def _for(self, dialect: sa.Dialect) -> tuple[Any, ...]:
        key = (dialect.name, dialect.driver, dialect.paramstyle)
        prepared = self._compiled.get(key)
        if prepared is None:
            compiled = self.statement.compile(dialect=dialect)
            binds = {name: bind.type.dialect_impl(dialect).bind_processor(dialect) for name, bind in compiled.binds.items()}
            # Values written into the statement itself ("status != 'closed'") travel as parameters too.
            fixed = {name: bind.value for name, bind in compiled.binds.items() if not bind.required}
            order = tuple(compiled.positiontup or ()) if compiled.positional else None
            columns = getattr(self.statement, "selected_columns", ())
            names = tuple(column.key for column in columns)
            results = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns)
            prepared = self._compiled[key] = (str(compiled), binds, fixed, order, names, results)
        return prepared

    def _execute(self, conn: sa.Connection, params: Mapping[str, Any]) -> Any:
        sql, binds, fixed, order, _, _ = self._for(conn.dialect)
        values = {
            name: (process(value) if (process := binds.get(name)) else value)
            for name, value in (fixed | dict(params)).items()
        }
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(sql, [values[name] for name in order] if order is not None else values)
        return cursor

    def rows(self, conn: sa.Connection, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The selected rows, each a dict keyed like ``statement.selected_columns``."""
        *_, names, results = self._for(conn.dialect)
        cursor = self._execute(conn, params)
        try:
            return [
                {name: (process(value) if process else value)
                 for name, process, value in zip(names, results, row, strict=True)}
                for row in cursor.fetchall()
            ]
        finally:
            cursor.close()

    def rowcount(self, conn: sa.Connection, params: Mapping[str, Any]) -> int:
        """Run an update; the number of rows it changed."""
        cursor = self._execute(conn, params)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()


def in_transaction() -> bool:
    """This request's session has begun a transaction (it read or wrote something through it)."""
    # A step that never touched the session has none yet: do not create one only to ask.
    return db.session.registry.has() and db.session().in_transaction()


_CONNECTION = "ivr_call_rows_connection"


@contextmanager
def outside_transaction() -> Iterator[sa.Connection]:
    """A connection of the ``call_rows`` pool: each statement is its own transaction (no BEGIN/COMMIT).

    One per app context (a request), returned to the pool when it ends (``init_app``).
    """
    conn = g.get(_CONNECTION)
    if conn is None:
        conn = db.engines[CALL_ROWS_BIND].connect()
        setattr(g, _CONNECTION, conn)
    yield conn


def init_app(app: Flask) -> None:
    """Return the request's ``call_rows`` connection to the pool when the app context ends."""

    @app.teardown_appcontext
    def _release(_exc: BaseException | None) -> None:
        conn = g.pop(_CONNECTION, None)
        if conn is not None:
            conn.close()


def fetch(statement: DriverStatement, params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The rows of a read: in the request's transaction if it has begun one (so it sees its own
    writes), else one autocommitted statement on the driver, which costs no ``BEGIN``/``COMMIT``."""
    if in_transaction():
        return list(db.session.execute(statement.statement, params).mappings())
    with outside_transaction() as conn:
        return statement.rows(conn, params)


def change(statement: DriverStatement, params: Mapping[str, Any]) -> int:
    """Run a write the way ``fetch`` runs a read; the number of rows it changed."""
    if in_transaction():
        return db.session.execute(statement.statement, params).rowcount
    with outside_transaction() as conn:
        return statement.rowcount(conn, params)
