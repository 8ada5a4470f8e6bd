"""Follow a transferred caller through the flow and keep their transfer's status up to date.

``create_app`` subscribes ``on_call_event`` to the call events (``ivr.voice.events``): it runs inside
the Twilio webhook's transaction, writes rows only (status, audit, the status-callback outbox) and
never lets its own failure break the call.
"""

import logging
from typing import Any

import sqlalchemy as sa

from flows import State

from ..extensions import db
from ..models import Account, Payment
from ..voice.call_rows import ENDED_CALL_STATUSES, CallRow
from . import audit, statuses, transfers
from .models import Agent, Transfer

logger = logging.getLogger(__name__)

DECLINE_STATES = {
    State.CARD_DECLINED: None,  # reason: the card's decline code
    State.CARD_UNREADABLE: "card_unreadable",
    State.PROCESSOR_DOWN: "processor_unavailable",
}
AGENT_STATES = (State.AGENT.value, State.RETURN_TO_AGENT.value)  # the IVR dialled an agent
FINAL_REASONS = {
    State.NO_INPUT: "no_input",
    State.TOO_MANY_ATTEMPTS: "too_many_invalid_keys",
    State.AGENT: "sent_to_agent_line",
}


def on_call_event(kind: str, call: CallRow, **details: Any) -> None:
    """Translate a call event into the transfer's status; errors are logged, never raised."""
    if not _may_concern_a_transfer(kind, call, details):
        return  # the common self-service turn: skip the savepoint, it costs every webhook
    try:
        with db.session.begin_nested():
            if kind == "turn":
                _on_turn(call, details["turn"])
            elif kind == "pay_field":
                _on_pay_field(call, str(details.get("field") or ""))
            elif kind == "status":
                _on_status(call, str(details.get("status") or ""))
    except Exception:  # the caller must never hear an apology because of the agents' bookkeeping
        logger.exception("transfer progress for call %s could not be recorded", call.call_sid)


def _may_concern_a_transfer(kind: str, call: CallRow, details: dict[str, Any]) -> bool:
    if kind == "status":
        # Only a call that reached an agent can carry a transfer: one already redirected into
        # secure pay (channel "agent"), or one still with the agent, whose transfer may be waiting
        # for a redirect Twilio has not fetched yet (the same calls /api/agent/calls offers).
        return str(details.get("status") or "") in ENDED_CALL_STATUSES and (
            call.channel == "agent" or call.state in AGENT_STATES
        )
    return call.channel == "agent" and bool((call.data or {}).get("transfer_id"))


def _transfer_of(call: CallRow) -> Transfer | None:
    transfer_id = (call.data or {}).get("transfer_id")
    if call.channel != "agent" or not transfer_id:
        return None
    transfer = transfers.lock(str(transfer_id))
    if transfer is None or transfer.call_sid != call.call_sid:
        return None
    return transfer


def _on_turn(call: CallRow, turn: Any) -> None:
    transfer = _transfer_of(call)
    if transfer is None:
        return
    state = State(turn.state)
    data = call.data or {}
    before = transfer.status
    if state == State.CARD_ENTRY:
        transfers.change(transfer, status="in_pay", field=None, reason=None)
    elif state in DECLINE_STATES:
        reason = DECLINE_STATES[state] or str(data.get("decline_code") or "card_declined")
        transfers.change(transfer, status="declined", field=None, reason=reason)
    elif state == State.CONFIRMATION:
        payment_id = data.get("payment_id")
        transfers.change(
            transfer,
            status="approved",
            field=None,
            reason=None,
            payment_id=int(payment_id) if payment_id else transfer.payment_id,
        )
    elif state == State.HUNG_UP:
        if transfer.status not in statuses.TRANSFER_FINAL:
            transfers.change(transfer, status="caller_hung_up", field=None)
    elif turn.final:
        returned = state == State.RETURN_TO_AGENT
        if transfer.status in statuses.TRANSFER_FINAL:
            transfers.change(transfer, returned=returned)
        else:
            reason = (
                transfer.reason
                if transfer.status == "declined"
                else FINAL_REASONS.get(state, "not_paid")
            )
            transfers.change(
                transfer, status="failed", field=None, reason=reason, returned=returned
            )
    elif transfer.status == "in_pay":  # "*" during card entry backs out to a menu
        transfers.change(transfer, status="waiting", field=None)
    if transfer.status != before and transfer.status in statuses.TRANSFER_FINAL:
        _audit_outcome(transfer)


def _on_pay_field(call: CallRow, field: str) -> None:
    transfer = _transfer_of(call)
    if transfer is None or not field:
        return
    # <Pay> status callbacks may trail the <Pay> result: never reopen a finished step.
    if transfer.status in ("waiting", "in_pay"):
        transfers.change(transfer, status="in_pay", field=field)


def _on_status(call: CallRow, status: str) -> None:
    if status not in ENDED_CALL_STATUSES:
        return
    active = db.session.scalars(
        sa.select(Transfer)
        .where(Transfer.call_sid == call.call_sid, Transfer.status.in_(statuses.TRANSFER_ACTIVE))
        .with_for_update()
    ).all()
    for transfer in active:
        transfers.change(transfer, status="caller_hung_up", field=None, reason=f"call {status}")
        _audit_outcome(transfer)


def _audit_outcome(transfer: Transfer) -> None:
    agent = db.session.get(Agent, transfer.agent_id)
    account = db.session.get(Account, transfer.account_id)
    detail = transfer.reason
    if transfer.status == "approved" and transfer.payment_id:
        payment = db.session.get(Payment, transfer.payment_id)
        if payment is not None:
            detail = f"payment {payment.id} confirmation {payment.confirmation_number}"
    audit.record(
        agent,
        "transfer.outcome",
        transfer.status,
        account_number=account.account_number if account else None,
        call_sid=transfer.call_sid,
        subject=transfer.id,
        detail=detail,
    )
