"""Transfers: an agent sends a live caller into secure pay; their progress as the agent sees it."""

import json
import logging
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from prompts.amounts import decimal

from ..extensions import db
from ..masking import mask
from ..models import Account, Payment, utcnow
from ..twilio.adapter import TwilioApiError
from ..twilio.client import twilio_rest
from ..voice.twiml import url
from . import audit, callbacks, statuses
from .checks import (
    Problem,
    find_account,
    live_call,
    new_id,
    payable_amount,
    twilio_problem,
)
from .models import Agent, AssistedPayment, Transfer
from .validation import PayRequest

logger = logging.getLogger(__name__)

# A transfer whose TwiML Twilio never fetched, or one silent this long, no longer blocks the call.
NEVER_ENTERED_AFTER = timedelta(minutes=2)
STALE_AFTER = timedelta(minutes=30)


def representation(transfer: Transfer) -> dict[str, Any]:
    """The transfer as the API and status callbacks show it: masked, and never card data."""
    account = db.session.get(Account, transfer.account_id)
    agent = db.session.get(Agent, transfer.agent_id)
    out: dict[str, Any] = {
        "id": transfer.id,
        "status": transfer.status,
        "field": transfer.field if transfer.status == "in_pay" else None,
        "reason": transfer.reason,
        "call_sid": transfer.call_sid,
        "account": mask(account.account_number) if account else None,
        "amount": decimal(transfer.amount_cents),
        "amount_cents": transfer.amount_cents,
        "agent": agent.name if agent else None,
        "return_to": mask(transfer.return_to) if transfer.return_to else None,
        "returned": transfer.returned,
        "confirmation_number": None,
        "card_brand": None,
        "card_last4": None,
        "version": transfer.version,
        "created_at": transfer.created_at.isoformat(),
        "updated_at": transfer.updated_at.isoformat(),
    }
    if transfer.status == "approved" and transfer.payment_id:
        payment = db.session.get(Payment, transfer.payment_id)
        if payment is not None:
            out.update(
                confirmation_number=payment.confirmation_number,
                amount=decimal(payment.amount_cents),
                amount_cents=payment.amount_cents,
                card_brand=payment.card_brand,
                card_last4=payment.card_last4,
            )
    return out


def change(transfer: Transfer, **values: Any) -> bool:
    """Apply ``values``; on a visible change bump the version and queue the status callback.

    A status move ``statuses.TRANSFER`` does not declare is logged and changes nothing (False).
    """
    status = values.get("status", transfer.status)
    if not statuses.TRANSFER.allows(transfer.status, status):
        logger.warning("transfer %s: status %s -> %s refused", transfer.id, transfer.status, status)
        return False
    changed = False
    for name, value in values.items():
        if getattr(transfer, name) != value:
            setattr(transfer, name, value)
            changed = True
    if changed:
        transfer.version += 1
        transfer.updated_at = utcnow()
        db.session.flush()
        callbacks.enqueue(transfer, json.dumps(representation(transfer), sort_keys=True))
    return changed


def lock(transfer_id: str) -> Transfer | None:
    """The transfer's row, locked until the transaction ends."""
    return db.session.scalar(
        sa.select(Transfer).where(Transfer.id == transfer_id).with_for_update()
    )


def call_not_busy(call_sid: str) -> None:
    """Refuse (409) a second transfer or assisted session while one is under way on the call.

    On PostgreSQL two requests for one call take turns from here until the caller's commit (a
    transaction-scoped advisory lock), so a double click cannot open two payment sessions.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"agent-call:{call_sid}"}
        )
    now = utcnow()
    for transfer in db.session.scalars(
        sa.select(Transfer).where(Transfer.call_sid == call_sid, Transfer.status.in_(statuses.TRANSFER_ACTIVE))
    ):
        if transfer.entered_at is None and now - transfer.created_at > NEVER_ENTERED_AFTER:
            change(transfer, status="failed", reason="call_never_arrived", field=None)
            continue
        if now - transfer.updated_at < STALE_AFTER:
            raise Problem(
                409,
                "call_busy",
                f"Transfer {transfer.id} is already under way on this call.",
                busy=transfer.id,
            )
    busy = db.session.scalar(
        sa.select(AssistedPayment.id).where(
            AssistedPayment.call_sid == call_sid,
            AssistedPayment.status.in_(statuses.ASSISTED_ACTIVE),
            AssistedPayment.updated_at > now - STALE_AFTER,
        )
    )
    if busy:
        raise Problem(
            409,
            "call_busy",
            f"Assisted payment {busy} is already under way on this call.",
            busy=busy,
        )


def check_request(agent: Agent, req: PayRequest, action: str) -> tuple[Account, int]:
    """The account and amount to charge, once the call is live, ours and free (transfer or assisted).

    :raises Problem: 404 unknown account, 422 amount, 409 call not live / not ours / busy; each
        refusal is written to the audit log as ``action`` and committed.
    """
    try:
        account = find_account(req.account_number)
        amount = payable_amount(account, req.amount_cents)
        live_call(req.call_sid)
        call_not_busy(req.call_sid)
    except Problem as problem:
        audit.record(
            agent,
            action,
            str(problem.status),
            account_number=req.account_number,
            call_sid=req.call_sid,
            detail=problem.code,
        )
        db.session.commit()
        raise
    return account, amount


def start(agent: Agent, req: PayRequest) -> Transfer:
    """Check everything, record the transfer, then redirect the live call into secure pay.

    :raises Problem: 404 unknown account, 422 amount, 409 call not live / not ours / busy,
        502/503 Twilio trouble. Every outcome is in the audit log.
    """
    account, amount = check_request(agent, req, "transfer.create")
    transfer = Transfer(
        id=new_id("tr_"),
        agent_id=agent.id,
        account_id=account.id,
        call_sid=req.call_sid,
        amount_cents=amount,
        return_to=req.return_to,
        status_callback=req.status_callback,
        status="waiting",
    )
    db.session.add(transfer)
    audit.record(
        agent,
        "transfer.create",
        "created",
        account_number=account.account_number,
        call_sid=req.call_sid,
        subject=transfer.id,
        detail=f"amount {decimal(amount)}",
    )
    # Committed before the redirect: Twilio may fetch our TwiML before its API call returns.
    db.session.commit()
    transfer_id = transfer.id

    try:
        twilio_rest().redirect_call(req.call_sid, url("/twilio/voice/transfer", t=transfer_id))
    except TwilioApiError as exc:
        problem = twilio_problem(exc, req.call_sid)
        transfer = lock(transfer_id)
        assert transfer is not None
        if transfer.entered_at is None:  # Twilio did not come for the TwiML after all
            change(transfer, status="failed", reason=problem.code)
        audit.record(
            agent,
            "transfer.redirect",
            str(problem.status),
            account_number=account.account_number,
            call_sid=req.call_sid,
            subject=transfer_id,
            detail=problem.code,
        )
        db.session.commit()
        raise problem from None
    transfer = db.session.get(Transfer, transfer_id)
    assert transfer is not None
    return transfer
