"""Agent-assisted pay: the agent stays on the line and drives Twilio's Payments API field by field.

The caller keys each field while Twilio masks the tones; we only ever see Twilio's masked status
callbacks and keep progress (entering / entered / error, a digit count, the card's last four).
When the session completes, Twilio's Stripe connector returns a PaymentMethod token, charged
through the same charge step as the IVR's (``money.charge.charge_token``).
"""

import copy
import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from prompts.amounts import decimal

from ..extensions import db
from ..masking import mask, mask_numbers
from ..models import Account, CallSession, Payment, utcnow
from ..money import charge
from ..twilio.adapter import CARD_FIELDS, TwilioApiError
from ..twilio.client import twilio_rest
from ..voice.twiml import url
from . import audit, statuses, transfers
from .checks import (
    Problem,
    new_id,
    twilio_problem,
)
from .models import Agent, AssistedPayment, ProcessedCallback
from .validation import PayRequest

logger = logging.getLogger(__name__)

FIELDS = CARD_FIELDS  # the fields a Payments session asks for, as <Pay> does
FIELD_PARAMS = {
    "payment-card-number": "PaymentCardNumber",
    "expiration-date": "ExpirationDate",
    "security-code": "SecurityCode",
    "postal-code": "PaymentCardPostalCode",
}


def _callback_url(assisted_id: str) -> str:
    return url("/twilio/agent/assisted-status", a=assisted_id)


def lock(assisted_id: str) -> AssistedPayment | None:
    """The session's row, locked until the transaction ends."""
    return db.session.scalar(
        sa.select(AssistedPayment).where(AssistedPayment.id == assisted_id).with_for_update()
    )


def needed(row: AssistedPayment) -> list[str]:
    """Fields still to capture: Twilio's ``Required`` when it said, else those not yet entered."""
    fields = row.fields or {}
    entered = [f for f in FIELDS if (fields.get(f) or {}).get("state") == "entered"]
    if row.required is not None:
        return [f for f in row.required if f in FIELDS and f not in entered]
    return [f for f in FIELDS if f not in entered]


def representation(row: AssistedPayment) -> dict[str, Any]:
    """The session as the console shows it: progress and masked facts only."""
    account = db.session.get(Account, row.account_id)
    agent = db.session.get(Agent, row.agent_id)
    out: dict[str, Any] = {
        "id": row.id,
        "mode": "assisted",
        "status": row.status,
        "field": row.field if row.status == "capturing" else None,
        "fields": {f: dict((row.fields or {}).get(f) or {"state": "pending"}) for f in FIELDS},
        "needed": needed(row),
        "error": row.error,
        "reason": row.reason,
        "call_sid": row.call_sid,
        "account": mask(account.account_number) if account else None,
        "amount": decimal(row.amount_cents),
        "amount_cents": row.amount_cents,
        "agent": agent.name if agent else None,
        "confirmation_number": None,
        "card_brand": None,
        "card_last4": None,
        "version": row.version,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }
    if row.payment_id and row.status in ("approved", "declined"):
        payment = db.session.get(Payment, row.payment_id)
        if payment is not None and payment.status == "succeeded":
            out.update(
                confirmation_number=payment.confirmation_number,
                card_brand=payment.card_brand,
                card_last4=payment.card_last4,
            )
    return out


def follow_payment(row: AssistedPayment) -> AssistedPayment:
    """Bring a session whose charge outcome it never recorded in line with its Payment; commits.

    The attempt (``payment_id``) is committed before Stripe is called. If the process dies during
    the charge, Twilio's redelivered result is ignored (already processed) and Stripe's webhook
    settles the Payment alone: the session would stay ``processing`` for ever. Likewise a session
    ``failed`` as ``processor_unavailable`` whose charge Stripe later reports. Reading the session
    takes the Payment's outcome once it is known (approved or declined), with its audit entry.
    """
    if row.payment_id is None or row.status not in ("processing", "failed"):
        return row
    payment = db.session.get(Payment, row.payment_id)
    if payment is None or payment.status not in ("succeeded", "declined"):
        return row
    db.session.refresh(row, with_for_update=True)  # locked, and as committed by now
    if row.status not in ("processing", "failed"):  # recorded meanwhile by the charge itself
        db.session.commit()
        return row
    if payment.status == "succeeded":
        _touch(row, status="approved", reason=None, field=None)
        detail = f"payment {payment.id} confirmation {payment.confirmation_number} (settled by Stripe)"
    else:
        _touch(row, status="declined", reason=payment.decline_code or "card_declined", field=None)
        detail = f"{row.reason} (settled by Stripe)"
    audit.record(
        db.session.get(Agent, row.agent_id),
        "assisted.outcome",
        row.status,
        account_number=_account_number(row),
        call_sid=row.call_sid,
        subject=row.id,
        detail=detail,
    )
    db.session.commit()
    return row


def _touch(row: AssistedPayment, **values: Any) -> bool:
    """Write ``values`` as a new version, unless their status is a move ``statuses.ASSISTED`` does not declare.

    A refused move is logged and changes nothing: it can only come from two deliveries racing.
    """
    status = values.get("status", row.status)
    if not statuses.ASSISTED.allows(row.status, status):
        logger.warning("assisted payment %s: status %s -> %s refused", row.id, row.status, status)
        return False
    for name, value in values.items():
        setattr(row, name, value)
    row.version += 1
    row.updated_at = utcnow()
    return True


def _account_number(row: AssistedPayment) -> str | None:
    account = db.session.get(Account, row.account_id)
    return account.account_number if account else None


# --- what the agent does ------------------------------------------------------------------------


def start(agent: Agent, req: PayRequest) -> AssistedPayment:
    """Check the account, amount and call, then open a Payments session (tokenize mode).

    :raises Problem: as for transfers (404, 422, 409, 502/503).
    """
    account, amount = transfers.check_request(agent, req, "assisted.start")
    row = AssistedPayment(
        id=new_id("ap_"),
        agent_id=agent.id,
        account_id=account.id,
        call_sid=req.call_sid,
        amount_cents=amount,
        status="starting",
        fields={f: {"state": "pending"} for f in FIELDS},
        required=None,
        actions=0,
    )
    db.session.add(row)
    audit.record(
        agent,
        "assisted.start",
        "starting",
        account_number=account.account_number,
        call_sid=req.call_sid,
        subject=row.id,
        detail=f"amount {decimal(amount)}",
    )
    db.session.commit()
    row_id = row.id
    cfg = current_app.config
    try:
        payment_sid = twilio_rest().create_payment(
            req.call_sid,
            idempotency_key=f"{row_id}:create",
            status_callback=_callback_url(row_id),
            payment_connector=cfg["TWILIO_PAY_CONNECTOR"],
            token_type="payment-method",
            postal_code=True,
            security_code=True,
        )
    except TwilioApiError as exc:
        problem = twilio_problem(exc, req.call_sid)
        row = lock(row_id)
        assert row is not None
        _touch(row, status="failed", reason=problem.code)
        audit.record(
            agent,
            "assisted.start",
            str(problem.status),
            account_number=account.account_number,
            call_sid=req.call_sid,
            subject=row_id,
            detail=problem.code,
        )
        db.session.commit()
        raise problem from None
    row = lock(row_id)
    assert row is not None
    row.payment_sid = payment_sid
    if row.status == "starting":
        _touch(row, status="ready")
    db.session.commit()
    return row


def _update(agent: Agent, row: AssistedPayment, action: str, **change: str) -> None:
    """One Payments update with its own idempotency key (the action number makes it unique)."""
    row.actions += 1
    key = f"{row.id}:{row.actions}:{action}"
    row_id, call_sid, payment_sid = row.id, row.call_sid, row.payment_sid
    db.session.commit()  # the action number is taken even if Twilio fails, so keys never repeat
    assert payment_sid is not None
    try:
        twilio_rest().update_payment(
            call_sid,
            payment_sid,
            idempotency_key=key,
            status_callback=_callback_url(row_id),
            **change,
        )
    except TwilioApiError as exc:
        problem = twilio_problem(exc, call_sid)
        locked = lock(row_id)
        assert locked is not None
        if problem.code in ("call_not_live", "call_unknown"):
            _touch(
                locked,
                status="caller_hung_up" if problem.code == "call_not_live" else "failed",
                reason=problem.code,
            )
        audit.record(
            agent,
            f"assisted.{action.split(':')[0]}",
            str(problem.status),
            account_number=_account_number(locked),
            call_sid=call_sid,
            subject=row_id,
            detail=f"{problem.code} (Twilio {exc.code or exc.http_status})",
        )
        db.session.commit()
        raise problem from None


def capture(agent: Agent, assisted_id: str, field: str) -> AssistedPayment:
    """Ask the caller to key ``field`` (again, if it was entered or went wrong)."""
    if field not in FIELDS:
        raise Problem(
            422,
            "invalid_field",
            "field must be one of " + ", ".join(FIELDS),
            errors={"field": "unknown"},
        )
    row = _for_action(agent, assisted_id, "capture")
    if row.status not in statuses.ASSISTED_CAPTURABLE:
        raise Problem(
            409,
            "not_capturing",
            f"This payment is {row.status}; fields can no longer be asked for.",
        )
    previous = (row.fields or {}).get(field) or {"state": "pending"}
    previous_status = row.status
    fields = copy.deepcopy(row.fields or {})
    fields[field] = {"state": "asked"}
    required = list(row.required) if row.required is not None else None
    if required is not None and field not in required:
        required.append(field)  # asked again: it is needed again until Twilio says otherwise
    # Recorded before Twilio is asked: a progress callback arriving meanwhile is never overwritten.
    _touch(row, status="capturing", field=field, fields=fields, error=None, required=required)
    try:
        _update(agent, row, f"capture:{field}", capture=field)
    except Problem:
        row = lock(assisted_id)
        assert row is not None
        if (row.fields or {}).get(field) == {"state": "asked"} and row.status == "capturing":
            fields = copy.deepcopy(row.fields or {})
            fields[field] = previous
            _touch(row, status=previous_status, fields=fields)
            db.session.commit()
        raise
    row = lock(assisted_id)
    assert row is not None
    again = previous.get("state") != "pending"
    audit.record(
        agent,
        "assisted.capture",
        "asked_again" if again else "asked",
        account_number=_account_number(row),
        call_sid=row.call_sid,
        subject=row.id,
        detail=field,
    )
    db.session.commit()
    return row


def complete(agent: Agent, assisted_id: str) -> AssistedPayment:
    """Hand the captured card to the connector; the token comes back in a status callback."""
    row = _for_action(agent, assisted_id, "complete")
    if row.status not in statuses.ASSISTED_CAPTURABLE:
        raise Problem(409, "not_capturing", f"This payment is {row.status}.")
    missing = needed(row)
    if missing:
        raise Problem(
            409, "fields_missing", "Still needed: " + ", ".join(missing) + ".", needed=missing
        )
    _update(agent, row, "complete", status="complete")
    row = lock(assisted_id)
    assert row is not None
    if row.status in statuses.ASSISTED_CAPTURABLE:
        _touch(row, status="processing", field=None)
    audit.record(
        agent,
        "assisted.complete",
        "sent",
        account_number=_account_number(row),
        call_sid=row.call_sid,
        subject=row.id,
    )
    db.session.commit()
    return row


def cancel(agent: Agent, assisted_id: str) -> AssistedPayment:
    """End the session without charging; a new one can be started."""
    row = _for_action(agent, assisted_id, "cancel")
    if row.status not in statuses.ASSISTED_CANCELLABLE:
        raise Problem(409, "not_cancellable", f"This payment is {row.status}.")
    if row.payment_sid:
        _update(agent, row, "cancel", status="cancel")
        row = lock(assisted_id)
        assert row is not None
    if row.status not in statuses.ASSISTED_FINAL:
        _touch(row, status="cancelled", field=None, reason="cancelled by the agent")
    audit.record(
        agent,
        "assisted.cancel",
        "cancelled",
        account_number=_account_number(row),
        call_sid=row.call_sid,
        subject=row.id,
    )
    db.session.commit()
    return row


def _for_action(agent: Agent, assisted_id: str, action: str) -> AssistedPayment:
    """The session's row, locked, if ``agent`` may act on it (docs/agents.md, "Who may act").

    The agent who started a session drives it; a supervisor or admin may take it over (a colleague
    went on break mid-call). Any other agent reads it but cannot change it: 403, audited.
    """
    row = lock(assisted_id)
    if row is None:
        raise Problem(404, "unknown_payment", f"No assisted payment {assisted_id}.")
    if row.agent_id != agent.id and not agent.may("supervisor"):
        owner = db.session.get(Agent, row.agent_id)
        owner_name = owner.name if owner else "another agent"
        audit.record(agent, f"assisted.{action}", "403", account_number=_account_number(row),
                     call_sid=row.call_sid, subject=row.id, detail=f"started by {owner_name}")
        db.session.commit()
        raise Problem(
            403,
            "not_your_payment",
            f"This payment was started by {owner_name}. Only they, a supervisor or an admin can change it.",
        )
    return row


# --- what Twilio tells us -----------------------------------------------------------------------


def _fingerprint(form: Mapping[str, str]) -> str:
    items = sorted((k, v) for k, v in form.items())
    return hashlib.sha256(json.dumps(items).encode("utf-8")).hexdigest()


def _parse_required(text: str) -> list[str]:
    out = []
    for part in text.replace(" ", ",").split(","):
        part = part.strip()
        if not part:
            continue
        # Accept "ExpirationDate" as well as "expiration-date".
        kebab = "".join("-" + c.lower() if c.isupper() else c for c in part).lstrip("-")
        if kebab == "payment-card-postal-code":
            kebab = "postal-code"
        if kebab in FIELDS and kebab not in out:
            out.append(kebab)
    return out


def _digits(value: str) -> int:
    return sum(1 for c in value if c.isalnum() or c == "*")


def handle_callback(assisted_id: str, form: Mapping[str, str]) -> None:
    """Apply one Payments status callback once; a redelivered callback changes nothing."""
    row = lock(assisted_id)
    if row is None:
        logger.warning("status callback for unknown assisted payment")
        db.session.commit()
        return
    if (
        form.get("AccountSid") != current_app.config["TWILIO_ACCOUNT_SID"]
        or form.get("CallSid") != row.call_sid
        or (row.payment_sid and form.get("Sid") and form.get("Sid") != row.payment_sid)
    ):
        logger.warning("assisted payment %s: callback for another call or session ignored", row.id)
        db.session.commit()
        return
    try:
        with db.session.begin_nested():
            db.session.add(ProcessedCallback(assisted_id=row.id, fingerprint=_fingerprint(form)))
    except IntegrityError:
        logger.info("assisted payment %s: replayed status callback ignored", row.id)
        db.session.commit()
        return
    if row.payment_sid is None and form.get("Sid"):
        row.payment_sid = form["Sid"]
    if form.get("Result"):
        _finish(row, form)
    elif row.status in statuses.ASSISTED_CAPTURABLE:
        _progress(row, form)
    db.session.commit()


def _progress(row: AssistedPayment, form: Mapping[str, str]) -> None:
    capture = form.get("Capture") or row.field
    partial = (form.get("PartialResult") or "").lower() == "true"
    error = form.get("ErrorType") or None
    fields = copy.deepcopy(row.fields or {})
    for field, param in FIELD_PARAMS.items():
        value = form.get(param)
        if not value:
            continue
        entry: dict[str, Any] = {
            "state": "entering" if field == capture and partial else "entered",
            "digits": _digits(value),
        }
        if field == "payment-card-number" and entry["state"] == "entered":
            last4 = value[-4:]
            entry["last4"] = last4 if last4.isdigit() else None
            entry["brand"] = form.get("PaymentCardType") or None
        fields[field] = entry
    if error and capture in FIELDS:
        fields[capture] = {**(fields.get(capture) or {}), "state": "error", "error": error}
    required = row.required
    if "Required" in form:
        required = _parse_required(form["Required"])
    elif capture in FIELDS and not partial and not error and required is not None:
        required = [f for f in required if f != capture]
    status = row.status
    if capture in FIELDS and status == "ready":
        status = "capturing"
    _touch(
        row,
        fields=fields,
        required=required,
        error=error,
        status=status,
        field=capture if capture in FIELDS else row.field,
    )


def _finish(row: AssistedPayment, form: Mapping[str, str]) -> None:
    if row.status in statuses.ASSISTED_FINAL or row.payment_id is not None:
        return  # cancelled by the agent, or another delivery of this result is charging
    result = form["Result"]
    agent = db.session.get(Agent, row.agent_id)
    if result == "success" and form.get("PaymentToken"):
        _charge(row, form)
        return
    if result == "success":
        _touch(row, status="failed", reason="the connector returned no token", field=None)
    elif result == "caller-hung-up":
        _touch(row, status="caller_hung_up", field=None)
    elif result == "caller-interrupted-with-star":
        _touch(row, status="cancelled", reason="the caller pressed star", field=None)
    else:
        detail = mask_numbers(
            f"{result}: {form.get('PaymentError') or form.get('PayErrorCode') or ''}"
        )
        _touch(row, status="failed", reason=detail[:120], field=None)
    audit.record(
        agent,
        "assisted.outcome",
        row.status,
        account_number=_account_number(row),
        call_sid=row.call_sid,
        subject=row.id,
        detail=row.reason,
    )


def _charge(row: AssistedPayment, form: Mapping[str, str]) -> None:
    """Charge the token through the one charge step the IVR uses, then record the session's outcome."""
    row_id = row.id
    account = db.session.get(Account, row.account_id)
    agent = db.session.get(Agent, row.agent_id)
    assert account is not None and agent is not None
    session = db.session.scalar(sa.select(CallSession).where(CallSession.call_sid == row.call_sid))

    def mark_processing(payment: Payment) -> None:
        # In the attempt's commit: a redelivered result then finds the session already charging.
        _touch(row, status="processing", payment_id=payment.id, field=None)

    charged = charge.charge_token(
        account,
        row.amount_cents,
        f"agent:{row_id}",
        form["PaymentToken"],
        channel="agent",
        call_sid=row.call_sid,
        language=account.language,
        caller=session.from_number if session else None,
        customer=form.get("ProfileId") or None,
        extra_metadata={"agent": agent.name},
        before_commit=mark_processing,
    )
    row = lock(row_id)
    assert row is not None
    if charged.status == charge.UNAVAILABLE:
        logger.warning("assisted payment %s: payment processor unavailable", row_id)
        _touch(row, status="failed", reason="processor_unavailable")
    elif charged.status == charge.APPROVED:
        _touch(row, status="approved", reason=None)
    else:
        _touch(row, status="declined", reason=charged.decline_code or "card_declined")
    detail = row.reason
    if charged.payment is not None and row.status == "approved":
        detail = f"payment {charged.payment_id} confirmation {charged.payment.confirmation_number}"
    audit.record(
        agent,
        "assisted.outcome",
        row.status,
        account_number=account.account_number,
        call_sid=row.call_sid,
        subject=row_id,
        detail=detail,
    )
