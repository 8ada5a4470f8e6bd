"""Record payments exactly once: open an attempt before charging, settle it once, queue one receipt.

The settle step is a conditional update (``WHERE status IN ('pending','error')``), so the pay webhook
and Stripe's own webhook can both report the same charge and only the first one counts; that one
also writes the payment's row of the posting file (``movements``) in the same transaction.
"""

import logging
import secrets
from datetime import datetime
from zoneinfo import ZoneInfo

import phonenumbers.timezone
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from flask import current_app

import prompts
from payments import ChargeResult
from prompts import amounts, dates

from ..extensions import db
from ..masking import mask
from ..models import Account, Payment, utcnow
from ..outbox.models import OutboxMessage
from ..phones import can_receive_sms, to_e164
from . import movements

logger = logging.getLogger(__name__)

CONFIRMATION_DIGITS = 8
SETTLEABLE = ("pending", "error")


def open_attempt(*, attempt_key: str, account: Account, amount_cents: int, call_sid: str | None,
                 channel: str, language: str, caller: str | None, stripe_customer: str | None = None,
                 stripe_payment_method: str | None = None, fee_cents: int = 0) -> Payment:
    """The payment row for this attempt, created once (the key is also Stripe's idempotency key).

    A redelivered attempt keeps the amount and fee it was opened with: the key's charge is that one.
    """
    caller_e164 = to_e164(caller)
    # One statement in the usual case: the unique attempt key turns a redelivery's insert into
    # nothing (no savepoint, no look-up first), and only then is the first delivery's row read.
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    payment = db.session.scalar(
        insert(Payment)
        .values(
            attempt_key=attempt_key,
            account_id=account.id,
            amount_cents=amount_cents,
            fee_cents=fee_cents,
            call_sid=call_sid,
            channel=channel,
            language=language,
            receipt_to=caller_e164 if can_receive_sms(caller_e164) else account.phone,
            status="pending",
            stripe_customer=stripe_customer,
            stripe_payment_method=stripe_payment_method,
        )
        .on_conflict_do_nothing(index_elements=["attempt_key"])
        .returning(Payment)
    )
    if payment is None:
        payment = db.session.scalar(sa.select(Payment).where(Payment.attempt_key == attempt_key))
        assert payment is not None
    return payment


def _new_confirmation_number() -> str:
    # Random, not sequential: one confirmation number says nothing about any other.
    while True:
        candidate = f"{secrets.randbelow(10**CONFIRMATION_DIGITS):0{CONFIRMATION_DIGITS}d}"
        if candidate[0] != "0" and not db.session.scalar(
            sa.select(Payment.id).where(Payment.confirmation_number == candidate)
        ):
            return candidate


def settle(payment: Payment, result: ChargeResult, now: datetime | None = None) -> Payment:
    """Apply a charge result once; on approval reduce the balance, record the money in and queue the receipt."""
    now = now or utcnow()
    if result.approved:
        confirmation = _new_confirmation_number()
        changed = db.session.execute(
            sa.update(Payment)
            .where(Payment.id == payment.id, Payment.status.in_(SETTLEABLE))
            .values(
                status="succeeded",
                confirmation_number=confirmation,
                paid_at=now,
                stripe_payment_intent=result.payment_intent_id,
                card_brand=result.card_brand,
                card_last4=result.card_last4,
                decline_code=None,
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed == 1:
            # Arithmetic in SQL, so two payments settling at once both count.
            db.session.execute(
                sa.update(Account)
                .where(Account.id == payment.account_id)
                .values(
                    balance_cents=Account.balance_cents - payment.amount_cents,
                    past_due_cents=sa.case(
                        (Account.past_due_cents > payment.amount_cents,
                         Account.past_due_cents - payment.amount_cents),
                        else_=0,
                    ),
                )
                .execution_options(synchronize_session=False)
            )
            db.session.refresh(payment)
            db.session.refresh(payment.account)
            movements.record_payment(payment)
            queue_receipt(payment)
            logger.info("payment %s approved for account %s", payment.id, mask(payment.account.account_number))
            return payment  # both rows were just read back
    else:
        changed = db.session.execute(
            sa.update(Payment)
            .where(Payment.id == payment.id, Payment.status.in_(SETTLEABLE))
            .values(
                status="declined",
                decline_code=result.decline_code,
                stripe_payment_intent=result.payment_intent_id,
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed == 1:
            # Staff chasing a member's "it didn't go through" need the decline in the log as well.
            logger.info("payment %s declined (%s) for account %s", payment.id,
                        result.decline_code or "no reason given", mask(payment.account.account_number))
    db.session.refresh(payment)
    db.session.refresh(payment.account)
    return payment


def mark_unavailable(payment: Payment) -> None:
    """The processor could not be reached: keep the attempt as ``error`` for Stripe's webhook to settle."""
    db.session.execute(
        sa.update(Payment)
        .where(Payment.id == payment.id, Payment.status == "pending")
        .values(status="error")
        .execution_options(synchronize_session=False)
    )


def member_zone(e164: str | None) -> ZoneInfo:
    """The member's time zone from their number, else the co-op's."""
    if e164:
        zones = phonenumbers.timezone.time_zones_for_number(phonenumbers.parse(e164))
        if zones and zones[0] != "Etc/Unknown":
            return ZoneInfo(zones[0])
    return ZoneInfo(current_app.config["ORG_TIMEZONE"])


def queue_receipt(payment: Payment) -> None:
    """Queue the SMS receipt in this transaction; the unique key stops a second one."""
    account = payment.account
    lang = prompts.language(payment.language)
    assert payment.paid_at is not None
    when = payment.paid_at.astimezone(member_zone(account.phone))
    # A convenience fee is named with the total charged, so the text matches the card statement.
    fee = {"fee": amounts.dollars(payment.fee_cents), "total": amounts.dollars(payment.charged_cents)}
    body = prompts.text(
        "sms.receipt_fee" if payment.fee_cents else "sms.receipt",
        lang,
        org=current_app.config["ORG_NAME"],
        amount=amounts.dollars(payment.amount_cents),
        last4=account.last4,
        when=dates.short_datetime(when, lang),
        confirmation=payment.confirmation_number,
        balance=amounts.dollars(account.balance_cents),
        **(fee if payment.fee_cents else {}),
    )
    to = payment.receipt_to or account.phone
    # One statement, no savepoint: the unique dedupe key keeps a second receipt out (a redelivered
    # result, or two processes settling at once), and ON CONFLICT makes that no error to recover from.
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    queued = db.session.execute(
        insert(OutboxMessage)
        .values(
            dedupe_key=f"receipt:{payment.id}",
            kind="receipt",
            to_number=to,
            body=body,
            account_id=account.id,
            payment_id=payment.id,
            respect_quiet_hours=False,
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
    ).rowcount
    if queued == 0:
        logger.info("receipt for payment %s already queued", payment.id)
