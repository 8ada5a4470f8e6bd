"""Record each money movement once, with its effect on the payment and the member's balance.

Every cause comes through here, in its own transaction (the caller commits): a payment settling
(``ledger.settle``), a refund (our API answer or Stripe's webhook, whichever arrives first), a
dispute taking the money and a won dispute bringing it back. The unique ``entry_id`` decides which
arrival counts, and only the one that added the row changes a balance, so each reversal reaches
the account exactly once.
"""

import logging
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from payments import RefundResult

from ..extensions import db
from ..masking import mask
from ..models import Account, Payment, utcnow
from .models import DISPUTE, DISPUTE_WON, PAYMENT, REFUND, MoneyMovement

logger = logging.getLogger(__name__)


def payment_movement(payment: Payment) -> MoneyMovement:
    """The (unsaved) movement of a settled payment: its amount in, on the day it was paid."""
    assert payment.paid_at is not None, "only a settled payment moved money"
    return MoneyMovement(
        entry_id=f"pay_{payment.id}",
        type=PAYMENT,
        amount_cents=payment.amount_cents,
        payment_id=payment.id,
        occurred_at=payment.paid_at,
    )


def record_payment(payment: Payment) -> None:
    """Record a payment that just settled (its balance was reduced by ``ledger.settle``).

    Only the one transaction whose conditional update settled the payment gets here, so there is
    nothing to look up first (the unique entry_id still stands guard) and the charge's hot path
    pays one ``INSERT``.
    """
    db.session.add(payment_movement(payment))


def record_refund(payment: Payment, refund: RefundResult) -> bool:
    """Record a Stripe refund of ``payment`` once by its id: −amount, the amount owed again.

    A refund Stripe did not carry out (failed, canceled, refused) moved nothing and is not recorded.
    Returns True when this call recorded it.
    """
    if not refund.money_moved:
        return False
    added = _add(
        MoneyMovement(
            entry_id=f"re_{refund.refund_id}",
            type=REFUND,
            amount_cents=-refund.amount_cents,
            payment_id=payment.id,
            occurred_at=refund.created_at or utcnow(),
        )
    )
    if added:
        refunded = Payment.refunded_cents + refund.amount_cents
        db.session.execute(
            sa.update(Payment)
            .where(Payment.id == payment.id)
            .values(
                refunded_cents=refunded,
                # Wholly refunded: the posting file's status says so (a disputed payment stays disputed).
                status=sa.case(
                    (sa.and_(Payment.status == "succeeded", refunded >= Payment.amount_cents), "refunded"),
                    else_=Payment.status,
                ),
            )
            .execution_options(synchronize_session=False)
        )
        _owe_more(payment, refund.amount_cents)
        db.session.refresh(payment)
        logger.info("refund %s of payment %s recorded: %s cents", refund.refund_id, payment.id, refund.amount_cents)
    return added


def record_dispute(payment: Payment, dispute_id: str, amount_cents: int, occurred_at: datetime | None) -> bool:
    """Record a chargeback's withdrawal once: −amount on the day Stripe took it, the amount owed again."""
    added = _add(
        MoneyMovement(
            entry_id=f"dp_{dispute_id}",
            type=DISPUTE,
            amount_cents=-amount_cents,
            payment_id=payment.id,
            occurred_at=occurred_at or utcnow(),
        )
    )
    if added:
        _owe_more(payment, amount_cents)
        logger.info("dispute %s of payment %s recorded: %s cents", dispute_id, payment.id, amount_cents)
    return added


def record_dispute_won(
    payment: Payment, dispute_id: str, amount_cents: int | None, occurred_at: datetime | None
) -> bool:
    """Record a won dispute once: the money back (``amount_cents``, else what the dispute took), owed no more.

    Nothing is recorded when the dispute never took money (an inquiry): there is nothing to give back.
    """
    withdrawn = db.session.scalar(sa.select(MoneyMovement.amount_cents).where(MoneyMovement.entry_id == f"dp_{dispute_id}"))
    if withdrawn is None:
        return False
    amount = -withdrawn if amount_cents is None else amount_cents
    added = _add(
        MoneyMovement(
            entry_id=f"dw_{dispute_id}",
            type=DISPUTE_WON,
            amount_cents=amount,
            payment_id=payment.id,
            occurred_at=occurred_at or utcnow(),
        )
    )
    if added:
        _owe_more(payment, -amount)
        logger.info("won dispute %s of payment %s recorded: %s cents", dispute_id, payment.id, amount)
    return added


def _add(movement: MoneyMovement) -> bool:
    """Add ``movement`` unless its entry_id is on record (here or in a racing transaction); True when added."""
    if db.session.scalar(sa.select(MoneyMovement.id).where(MoneyMovement.entry_id == movement.entry_id)) is not None:
        return False
    try:
        with db.session.begin_nested():
            db.session.add(movement)
    except IntegrityError:
        # Another process recorded the same fact between our look and our insert: theirs counts.
        return False
    return True


def _owe_more(payment: Payment, cents: int) -> None:
    """Raise the account's balance by ``cents`` (lower it when negative); arithmetic in SQL, so racing changes all count."""
    db.session.execute(
        sa.update(Account)
        .where(Account.id == payment.account_id)
        .values(balance_cents=Account.balance_cents + cents)
        .execution_options(synchronize_session=False)
    )
    account = payment.account
    db.session.expire(account, ["balance_cents"])  # read back on next use, never stale
    logger.info("account %s balance changed by %s cents", mask(account.account_number), cents)
