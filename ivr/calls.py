"""Move a call between the database and the flow engine. The call's state of record is its row.

Every webhook of a call locks its ``CallSession`` row (``SELECT … FOR UPDATE`` on PostgreSQL), so two
server processes answering the same call take turns, and a request Twilio delivers twice is spotted
by its ``seq`` and answered with the saved TwiML.
"""

import logging
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from flows import AccountView, State, Turn

from . import identity
from .extensions import db
from .masking import mask
from .models import Account, CallSession, utcnow
from .phones import to_e164

logger = logging.getLogger(__name__)

# Twilio's CallStatus values after which a call is over.
ENDED_CALL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


def lock(call_sid: str) -> CallSession | None:
    """The call's row, locked until the transaction ends (None for an unknown call)."""
    return db.session.scalar(
        sa.select(CallSession)
        .where(CallSession.call_sid == call_sid)
        .options(joinedload(CallSession.identified_account))  # one round trip, not two
        .with_for_update(of=CallSession)  # the account row is read, not locked
    )


def begin(call_sid: str, *, from_number: str | None, to_number: str | None, state: State,
          channel: str = "ivr", account_id: int | None = None, data: Mapping[str, Any] | None = None,
          language: str = "en") -> tuple[CallSession, bool]:
    """The call's locked row, creating it if new; the flag says whether it was just created."""
    existing = lock(call_sid)
    if existing is not None:
        return existing, False
    row = CallSession(
        call_sid=call_sid,
        from_number=from_number,
        to_number=to_number,
        state=state.value,
        channel=channel,
        account_id=account_id,
        data=dict(data or {}),
        language=language,
        seq=0,
    )
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:  # another process created it a moment ago: use theirs
        existing = lock(call_sid)
        assert existing is not None
        return existing, False
    return row, True


def enter_identified(call_sid: str, *, state: State, channel: str, account: Account,
                     data: Mapping[str, Any], from_number: str | None = None,
                     to_number: str | None = None) -> CallSession:
    """Put a call (new, or one already in the flow) at ``state`` with ``account`` identified.

    Used when an agent transfers a caller into secure pay and when a reminder callback is answered.
    The ``seq`` keeps counting, so answers to the call's earlier TwiML are recognised as stale.
    """
    call, created = begin(call_sid, from_number=from_number, to_number=to_number, state=state,
                          channel=channel, account_id=account.id, data=data, language=account.language)
    if not created:
        call.state = state.value
        call.channel = channel
        call.account_id = account.id
        call.data = {"language": call.language, **dict(data)}
        call.ended_at = None
    else:
        call.data = {"language": account.language, **dict(data)}
    return call


def account_view(account: Account) -> AccountView:
    """The flow's read-only view of an account."""
    return AccountView(
        account_number=account.account_number,
        balance_cents=account.balance_cents,
        past_due_cents=account.past_due_cents,
        due_date=account.due_date,
        language=account.language,
        status=account.status,
    )


class DbCallContext:
    """``flows.CallContext`` over the database for one call."""

    def __init__(self, call: CallSession) -> None:
        cfg = current_app.config
        self.call = call
        self.data: Mapping[str, Any] = dict(call.data or {})
        self.agent_available = bool(cfg["AGENT_TRANSFER_NUMBER"])
        self.min_payment_cents = int(cfg["MIN_PAYMENT_CENTS"])
        self.max_payment_cents = cfg["MAX_PAYMENT_CENTS"]
        self._account: Account | None = None  # held, so the session's weak identity map keeps it

    def caller_accounts(self) -> list[AccountView]:
        caller = to_e164(self.call.from_number)
        if caller is None:
            return []
        rows = db.session.scalars(
            sa.select(Account)
            .where(Account.phone == caller, Account.status != "closed")
            .order_by(Account.account_number)
        ).all()
        return [account_view(a) for a in rows]

    def account(self) -> AccountView | None:
        if self._account is None and self.call.account_id is not None:
            self._account = db.session.get(Account, self.call.account_id)
        return account_view(self._account) if self._account is not None else None

    def verify(self, account_number: str, last4: str) -> bool:
        account = identity.verify(account_number, last4, self.call.call_sid)
        if account is None:
            return False
        self._account = account
        self.call.account_id = account.id
        logger.info("call %s identified account %s", self.call.call_sid, mask(account.account_number))
        return True


def apply(call: CallSession, turn: Turn, twiml: str) -> None:
    """Save the turn: new state, merged data, language, the answer and the next ``seq``."""
    data = dict(call.data or {})
    data.update(turn.updates)
    call.data = data
    call.language = str(data.get("language", call.language))
    call.state = turn.state.value
    call.seq += 1
    call.last_twiml = twiml
    if turn.final:
        call.ended_at = call.ended_at or utcnow()
