"""The one charge step: every channel that turns a card token into money goes through ``charge_token``.

Exactly once, whoever calls: the attempt is committed (``pending``) before the processor is called
with the attempt's key as Stripe's idempotency key, so a retry of the same attempt can only ever
find the same charge; the result is applied by ``ledger.settle``, a conditional update that Stripe's
own webhook may race without counting twice. Needs an app context (gateway, ``ORG_NAME``); no
request and no call row, so scheduled charges can call it from the command line.
"""

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from flask import current_app

from payments import ChargeInProgress, PaymentUnavailable

from ..extensions import db
from ..models import Account, Payment
from ..monitoring import metrics
from . import ledger

logger = logging.getLogger(__name__)

APPROVED = "approved"
DECLINED = "declined"
UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class ChargeOutcome:
    """How a charge ended: approved (with the settled payment), declined (with its code) or unavailable."""

    status: str  # APPROVED, DECLINED or UNAVAILABLE
    payment_id: int
    payment: Payment | None = None  # the settled row; None when the processor could not be reached
    decline_code: str | None = None
    # Unavailable because the processor is still running an earlier request of this same attempt
    # (another delivery's): asked again shortly, it answers with that request's result.
    in_progress: bool = False


def charge_token(
    account: Account,
    amount_cents: int,
    attempt_key: str,
    token: str,
    *,
    channel: str,
    call_sid: str | None,
    language: str,
    caller: str | None,
    customer: str | None = None,
    off_session: bool = False,
    fee_cents: int = 0,
    extra_metadata: Mapping[str, str] | None = None,
    before_commit: Callable[[Payment], None] | None = None,
) -> ChargeOutcome:
    """Open the attempt, commit it, charge ``token`` outside any lock, and settle it once.

    ``attempt_key`` names one attempt (a redelivery has the same key, a new card a new one).
    ``off_session`` charges a saved card (``token`` its PaymentMethod, ``customer`` its owner).
    ``fee_cents`` is a convenience fee the member accepted: charged in the same PaymentIntent as
    ``amount_cents`` and kept apart on the payment (the balance drops by the amount only).
    ``before_commit(payment)`` writes the caller's own rows in the attempt's commit (an assisted
    session's ``processing``). Commits; call it with no lock the caller needs
    kept, since the processor may take seconds. The settle is left in the open transaction for
    the caller to commit with its own record of the outcome.
    """
    payment = ledger.open_attempt(
        attempt_key=attempt_key,
        account=account,
        amount_cents=amount_cents,
        fee_cents=fee_cents,
        call_sid=call_sid,
        channel=channel,
        language=language,
        caller=caller,
        stripe_customer=customer,
        # Twilio's connector gives PaymentMethods (pm_…); a legacy tok_ cannot be kept anyway.
        stripe_payment_method=token if token.startswith("pm_") else None,
    )
    payment_id = payment.id
    metadata = {
        "payment_id": str(payment_id),
        "account_number": account.account_number,
        **({"call_sid": call_sid} if call_sid else {}),
        "channel": channel,
        # The PaymentIntent's amount is both; Stripe's dashboard shows which part was the fee.
        **({"fee_cents": str(payment.fee_cents)} if payment.fee_cents else {}),
        **(extra_metadata or {}),
    }
    description = f"{current_app.config['ORG_NAME']} account ending {account.last4}"
    if before_commit is not None:
        before_commit(payment)
    db.session.commit()  # the attempt is on record before any money moves

    try:
        settled = _charge_committed(payment_id, token=token, metadata=metadata, description=description,
                                    customer=customer, off_session=off_session)
    except ChargeInProgress:
        return ChargeOutcome(UNAVAILABLE, payment_id, in_progress=True)
    if settled is None:
        return ChargeOutcome(UNAVAILABLE, payment_id)
    if settled.status == "succeeded":
        return ChargeOutcome(APPROVED, payment_id, settled)
    return ChargeOutcome(DECLINED, payment_id, settled, settled.decline_code)


@metrics.counts_charge
def _charge_committed(payment_id: int, *, token: str, metadata: Mapping[str, str], description: str,
                      customer: str | None, off_session: bool) -> Payment | None:
    """Charge a committed attempt (its key is Stripe's idempotency key) and settle it.

    Returns the settled payment, or None when the processor could not be reached: the attempt is
    then kept as ``error`` for Stripe's webhook to settle if the charge went through after all.
    """
    payment = db.session.get(Payment, payment_id)
    assert payment is not None, "the attempt is opened and committed first"
    try:
        result = current_app.extensions["ivr.gateway"].charge(
            token=token,
            amount_cents=payment.charged_cents,  # one charge: the amount and any fee
            currency="usd",
            idempotency_key=payment.attempt_key,
            metadata=metadata,
            customer=customer,
            description=description,
            off_session=off_session,
        )
    except ChargeInProgress:
        raise  # left pending: the request still running will settle it (or Stripe's webhook will)
    except PaymentUnavailable:
        ledger.mark_unavailable(db.session.get(Payment, payment_id))
        return None
    return ledger.settle(db.session.get(Payment, payment_id), result)
