"""Twilio webhooks of the agent feature: the transferred call's entry into secure pay, and the
Payments API status callbacks of assisted sessions. Both are signed by Twilio.
"""

import logging

import sqlalchemy as sa
from flask import Blueprint, request

from flows import ENTRY_POINTS, Entry

from ..extensions import db
from ..models import Account, utcnow
from ..twilio.signatures import call_sid as signed_call_sid
from ..twilio.signatures import twilio_signed
from ..voice import call_rows
from ..voice import webhooks as voice
from ..voice.twiml import apology, xml_response
from . import assisted, statuses, transfers
from .models import Transfer

logger = logging.getLogger(__name__)
bp = Blueprint("agent_voice", __name__)


@bp.post("/twilio/voice/transfer")
@twilio_signed
def transfer_entry():
    """Twilio fetches this after the agent's redirect: start the flow at the amount confirmation."""
    form = request.form
    call_sid = signed_call_sid()
    transfer = db.session.get(Transfer, request.args.get("t", ""))
    if transfer is None or transfer.call_sid != call_sid:
        logger.warning("transfer entry for an unknown transfer on call %s", call_sid)
        return xml_response(apology())
    call = call_rows.lock(call_sid)  # the call first, then the transfer: the order every webhook uses
    transfer = transfers.lock(transfer.id)
    assert transfer is not None
    if transfer.entered_at is not None and call is not None and call.last_twiml:
        call_rows.release()  # Twilio asked twice: the same answer, nothing advanced
        return xml_response(call.last_twiml)
    account = db.session.get(Account, transfer.account_id)
    assert account is not None
    call = call_rows.enter_identified(
        call_sid,
        state=ENTRY_POINTS[Entry.TRANSFER],
        channel="agent",
        account=account,
        data={
            "amount_cents": transfer.amount_cents,
            "return_to": transfer.return_to,
            "transfer_id": transfer.id,
        },
        from_number=form.get("From"),
        to_number=form.get("To"),
    )
    transfer.entered_at = utcnow()
    if (
        transfer.status != "waiting"
    ):  # e.g. marked failed when the redirect call timed out, yet it came
        transfers.change(transfer, status="waiting", reason=None, field=None)
    for other in db.session.scalars(
        sa.select(Transfer).where(
            Transfer.call_sid == call_sid,
            Transfer.id != transfer.id,
            Transfer.status.in_(statuses.TRANSFER_ACTIVE),
        )
    ):
        transfers.change(other, status="failed", reason="superseded", field=None)
    twiml = voice.start_call(call, Entry.TRANSFER)  # commits the transfer's changes with the call
    assert twiml is not None, "a locked call row cannot move"
    logger.info("call %s entered secure pay for transfer %s", call_sid, transfer.id)
    return xml_response(twiml)


@bp.post("/twilio/agent/assisted-status")
@twilio_signed
def assisted_status():
    """A Payments API status callback (progress, errors, then the result with the token)."""
    assisted.handle_callback(request.args.get("a", ""), request.form)
    return ("", 204)
