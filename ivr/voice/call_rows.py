"""Move a call between the database and the flow engine. The call's state of record is its row.

``seq`` numbers a call's answers: an action URL carries the seq it answers, so a request Twilio
delivers twice is spotted and answered with the saved TwiML. ``version`` counts the row's writes.
A menu step reads the row without a lock, decides, and saves with ``UPDATE … WHERE version = <the
version it read>``: of two processes answering the same request, one writes and the other finds
the row moved on. Webhooks that also lock other rows (the ``<Pay>`` result, agent transfers,
callbacks, status callbacks) lock the call's row first (``SELECT … FOR UPDATE`` on PostgreSQL).

This module is the hot path's only data access, and it owns the commit: a webhook ends its work
with ``commit_answer`` (save the call's answer and commit, or roll back when the row moved) or
``release`` (commit what it wrote and let go of the row's lock); it never commits the session itself.
"""

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Flask, g
from sqlalchemy.exc import IntegrityError

from flows import AccountView, CardOnFile, State, Turn

from ..extensions import CALL_ROWS_BIND, db
from ..models import Account, CallSession, utcnow
from ..money.models import SavedCard

logger = logging.getLogger(__name__)

# Twilio's CallStatus values after which a call is over.
ENDED_CALL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


# The flow's view of an account is read straight from these columns of ``accounts``.
ACCOUNT_VIEW_FIELDS = tuple(f.name for f in fields(AccountView))
# The columns an account is read with for the flow: the view's, and the id.
ACCOUNT_VIEW_COLUMNS = ("id", *ACCOUNT_VIEW_FIELDS)


# --- statements run on the driver's cursor ------------------------------------------------------
# A menu step's two statements run straight on the database driver's cursor. SQLAlchemy still
# writes the SQL (compiled once per dialect) and converts every value with the column types' own
# processors; what is skipped is its per-execution machinery (execution context, result objects,
# events), which for a menu step cost more than the database itself once the process had been
# idle for a moment (docs/speed.md). Such statements run autocommitted on the ``call_rows`` pool;
# inside a transaction everything goes through the session as usual.


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


# --- the call's row -------------------------------------------------------------------------------


_CALLS = CallSession.__table__
_ACCOUNTS = Account.__table__
# The fields a webhook may change.
_WRITABLE = ("from_number", "to_number", "channel", "state", "language", "account_id", "data", "seq",
             "last_twiml", "call_status", "ended_at", "furthest", "path")

# How far a call got, in order: the /ops funnel. A call is identified once it has an account;
# the later stages are reached by entering one of these states.
FUNNEL = ("identified", "heard_balance", "card_entry", "paid")
_STAGE_OF_STATE = {
    State.SUMMARY: "heard_balance",
    State.NOTHING_DUE: "heard_balance",
    State.CALLBACK_WELCOME: "heard_balance",
    State.ENTER_AMOUNT: "heard_balance",
    State.CONFIRM_AMOUNT: "heard_balance",
    State.HISTORY: "heard_balance",
    State.FEE_CONFIRM: "heard_balance",
    State.CARD_ENTRY: "card_entry",
    State.SAVED_CARD: "card_entry",
    State.CONFIRMATION: "paid",
    State.SAVE_CARD_OFFER: "paid",
    State.AFTER_PAYMENT: "paid",
}
PATH_LIMIT = 40  # states kept per call: the first ones and the end matter; a loop in between is cut


@dataclass(eq=False)
class CallRow:
    """A call's row as the webhooks read and write it: plain data, saved by ``save``.

    Core statements, not ORM objects: a menu step is one read and one conditional write, and the
    ORM's unit of work was most of a step's time (docs/speed.md).
    """

    call_sid: str
    from_number: str | None = None
    to_number: str | None = None
    channel: str = "ivr"
    state: str = ""
    language: str = "en"
    account_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    last_twiml: str | None = None
    call_status: str | None = None
    ended_at: datetime | None = None
    furthest: str | None = None  # a FUNNEL stage
    path: list[str] | None = None  # the states entered, in order (at most PATH_LIMIT)
    id: int | None = None  # None until the row is first saved
    account: AccountView | None = None  # the identified account, read with the row
    version: int | None = None  # the version read (None: not in the database yet)


_READ = (
    sa.select(
        *(_CALLS.c[name] for name in ("id", "call_sid", "version", *_WRITABLE)),
        *(_ACCOUNTS.c[name].label(f"a_{name}") for name in ACCOUNT_VIEW_FIELDS),
    )
    .select_from(_CALLS.outerjoin(_ACCOUNTS, _ACCOUNTS.c.id == _CALLS.c.account_id))
    .where(_CALLS.c.call_sid == sa.bindparam("call_sid"))
)
_LOCK = _READ.with_for_update(of=_CALLS)  # the account row is read, not locked
_UPDATE = DriverStatement(
    sa.update(_CALLS)
    .where(_CALLS.c.id == sa.bindparam("row_id"), _CALLS.c.version == sa.bindparam("read_version"))
    .values({name: sa.bindparam(name) for name in (*_WRITABLE, "version", "updated_at")})
)
# Outside a transaction (a menu step) the read runs on the driver's cursor, like _UPDATE.
_FAST_READ = DriverStatement(_READ)
_INSERT = sa.insert(_CALLS).values(
    {name: sa.bindparam(name) for name in ("call_sid", *_WRITABLE, "version", "created_at", "updated_at")}
)


def _row(m: Mapping[str, Any] | None) -> CallRow | None:
    if m is None:
        return None
    account = None
    if m["a_account_number"] is not None:  # identified: the account's columns came with the row
        account = account_view({name: m[f"a_{name}"] for name in ACCOUNT_VIEW_FIELDS})
    values = {name: m[name] for name in _WRITABLE}
    return CallRow(call_sid=m["call_sid"], id=m["id"], account=account, version=m["version"], **values)


def release() -> None:
    """End the request's work: commit what it wrote (the call's row and anything beside it) and let
    go of any row lock. Costs nothing when the request wrote only through ``save`` outside a
    transaction (an empty ``Session.commit()`` would still cost a tenth of a millisecond).
    """
    if in_transaction():
        db.session.commit()


def commit_answer(call: CallRow) -> bool:
    """Save ``call`` (its new answer) and commit it with everything else the request wrote.

    False when the row was written since ``call`` was read: then nothing the request wrote is kept
    (it is rolled back), and the caller decides again on the row as it is now.
    """
    if not save(call):
        db.session.rollback()
        return False
    release()
    return True


def read(call_sid: str) -> CallRow | None:
    """The call's row as it is now, without a lock (None for an unknown call).

    Pair with ``save``: it writes only if nobody wrote the row in between.
    """
    rows = fetch(_FAST_READ, {"call_sid": call_sid})
    return _row(rows[0] if rows else None)


def lock(call_sid: str) -> CallRow | None:
    """The call's row, locked until the session's transaction ends (None for an unknown call)."""
    return _row(db.session.execute(_LOCK, {"call_sid": call_sid}).mappings().first())


def new(call_sid: str, *, from_number: str | None, to_number: str | None, state: State,
        channel: str = "ivr", account: Account | None = None, data: Mapping[str, Any] | None = None,
        language: str = "en") -> CallRow:
    """A call not yet in the database; ``save`` inserts it."""
    return CallRow(
        call_sid=call_sid, from_number=from_number, to_number=to_number, state=state.value,
        channel=channel, account_id=account.id if account else None, data=dict(data or {}),
        language=language, account=account_view(account) if account else None,
    )


def save(call: CallRow) -> bool:
    """Write ``call``; False (nothing written) when the row was written since it was read, or when
    a new call's row was created by another delivery meanwhile.

    Inside the session's transaction when there is one, so whatever else the webhook wrote
    commits or rolls back with the call; otherwise a single autocommitted statement.
    """
    now = utcnow()
    new_version = 1 if call.version is None else call.version + 1
    params = {name: getattr(call, name) for name in _WRITABLE}
    params.update(version=new_version, updated_at=now)
    if call.version is None:
        written = _insert(call, {**params, "call_sid": call.call_sid, "created_at": now})
    else:
        written = change(_UPDATE, {**params, "row_id": call.id, "read_version": call.version}) == 1
    if written:
        call.version = new_version
    return written


def _insert(call: CallRow, params: Mapping[str, Any]) -> bool:
    try:
        if in_transaction():
            with db.session.begin_nested():  # a savepoint: a lost race leaves the transaction usable
                result = db.session.execute(_INSERT, params)
        else:
            with outside_transaction() as conn:
                result = conn.execute(_INSERT, params)
    except IntegrityError:  # another process inserted this call a moment ago
        return False
    call.id = result.inserted_primary_key[0]
    return True


def begin(call_sid: str, *, from_number: str | None, to_number: str | None, state: State,
          channel: str = "ivr", account: Account | None = None, data: Mapping[str, Any] | None = None,
          language: str = "en") -> tuple[CallRow, bool]:
    """The call's locked row, creating it if new; the flag says whether it was just created."""
    existing = lock(call_sid)
    if existing is not None:
        return existing, False
    row = new(call_sid, from_number=from_number, to_number=to_number, state=state, channel=channel,
              account=account, data=data, language=language)
    if not save(row):
        existing = lock(call_sid)
        assert existing is not None
        return existing, False
    return row, True


def enter_identified(call_sid: str, *, state: State, channel: str, account: Account,
                     data: Mapping[str, Any], from_number: str | None = None,
                     to_number: str | None = None) -> CallRow:
    """Put a call (new, or one already in the flow) at ``state`` with ``account`` identified.

    Used when an agent transfers a caller into secure pay and when a reminder callback is answered.
    The ``seq`` keeps counting, so answers to the call's earlier TwiML are recognised as stale.
    The row stays locked; the caller's ``start_call`` saves it.
    """
    call, created = begin(call_sid, from_number=from_number, to_number=to_number, state=state,
                          channel=channel, account=account, data=data, language=account.language)
    if not created:
        call.state = state.value
        call.channel = channel
        call.account_id = account.id
        call.account = account_view(account)
        call.data = {"language": call.language, **dict(data)}
        call.ended_at = None
    else:
        call.data = {"language": account.language, **dict(data)}
    return call


_CALLER_ACCOUNTS = DriverStatement(
    sa.select(*(_ACCOUNTS.c[name] for name in ACCOUNT_VIEW_COLUMNS))
    .where(_ACCOUNTS.c.phone == sa.bindparam("phone"), _ACCOUNTS.c.status != "closed")
    .order_by(_ACCOUNTS.c.account_number)
)


def account_view(account: Account | Mapping[str, Any]) -> AccountView:
    """The flow's read-only view of an account (an ``Account``, or a row of its columns)."""
    if isinstance(account, Mapping):
        return AccountView(**{name: account[name] for name in ACCOUNT_VIEW_FIELDS})
    return AccountView(**{name: getattr(account, name) for name in ACCOUNT_VIEW_FIELDS})


def accounts_on_phone(phone: str) -> list[AccountView]:
    """The open accounts whose phone on file is ``phone`` (E.164), by account number."""
    return [account_view(row) for row in fetch(_CALLER_ACCOUNTS, {"phone": phone})]


_CARDS = SavedCard.__table__
_CARD_ON_FILE = DriverStatement(
    sa.select(_CARDS.c.card_brand, _CARDS.c.card_last4).where(_CARDS.c.account_id == sa.bindparam("account_id"))
)


def card_on_file(account_id: int) -> CardOnFile | None:
    """The flow's view of the account's saved card (brand and last four), or None."""
    rows = fetch(_CARD_ON_FILE, {"account_id": account_id})
    return CardOnFile(rows[0]["card_brand"], rows[0]["card_last4"]) if rows else None


def apply(call: CallRow, turn: Turn, twiml: str) -> None:
    """Apply the turn (``save`` writes it): new state, merged data, language, the answer and the next ``seq``."""
    data = dict(call.data or {})
    data.update(turn.updates)
    call.data = data
    if turn.updates.get("identified") is False:
        # The caller goes on to pay another account: that one is identified afresh.
        call.account_id = None
        call.account = None
    call.language = str(data.get("language", call.language))
    call.state = turn.state.value
    call.seq += 1
    call.last_twiml = twiml
    _record_progress(call)
    if turn.final:
        call.ended_at = call.ended_at or utcnow()


def _record_progress(call: CallRow) -> None:
    """Note the state on the call's path and raise ``furthest``; saved by the step's own UPDATE."""
    path = list(call.path or [])
    path.append(call.state)
    if len(path) > PATH_LIMIT:  # keep how it began and how it ended
        path = path[: PATH_LIMIT // 2] + path[-(PATH_LIMIT // 2):]
    call.path = path
    stage = _STAGE_OF_STATE.get(State(call.state)) if call.state in State.__members__ else None
    if stage is None and call.account_id is not None:
        stage = "identified"
    if stage is not None and (call.furthest is None or FUNNEL.index(stage) > FUNNEL.index(call.furthest)):
        call.furthest = stage
