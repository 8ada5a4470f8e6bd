"""Record each money movement once, with its effect on the payment and the member's balance.

Every cause comes through here, in its own transaction (the caller commits): a payment settling
(``ledger.settle``), a refund (our API answer or Stripe's webhook, whichever arrives first), a
dispute taking the money and a won dispute bringing it back. The unique ``entry_id`` decides which
arrival counts, and only the one that added the row changes a balance, so each reversal reaches
the account exactly once.

A payment with a convenience fee moved two kinds of money in one charge: the bill's and the fee's.
Each has its rows (``type`` ``fee`` for the fee, its ``entry_id`` the bill row's with ``:fee``),
and only the bill's money touches the member's balance. Money going back is taken from the bill
first and from the fee last: a full refund returns both, a refund of the amount keeps the fee.
"""

import logging
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from payments import RefundResult

from ..extensions import db
from ..masking import mask
from ..models import Account, Payment, utcnow
from .models import DISPUTE, DISPUTE_WON, FEE, PAYMENT, REFUND, MoneyMovement

logger = logging.getLogger(__name__)

FEE_SUFFIX = ":fee"  # a fee row's entry_id is its bill row's with this suffix: pay_7 and pay_7:fee


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


def fee_movement(payment: Payment) -> MoneyMovement:
    """The (unsaved) movement of a settled payment's convenience fee, beside its payment row."""
    assert payment.paid_at is not None and payment.fee_cents > 0, "only a charged fee moved money"
    return MoneyMovement(
        entry_id=f"pay_{payment.id}{FEE_SUFFIX}",
        type=FEE,
        amount_cents=payment.fee_cents,
        payment_id=payment.id,
        occurred_at=payment.paid_at,
    )


def record_payment(payment: Payment) -> None:
    """Record a payment that just settled (its balance was reduced by ``ledger.settle``), and its fee.

    Only the one transaction whose conditional update settled the payment gets here, so there is
    nothing to look up first (the unique entry_id still stands guard) and the charge's hot path
    pays one ``INSERT`` (two with a fee).
    """
    db.session.add(payment_movement(payment))
    if payment.fee_cents:
        db.session.add(fee_movement(payment))


def bill_refunded_cents(payment: Payment) -> int:
    """How much of the payment's bill amount has been refunded (refunds take the bill first)."""
    return min(payment.refunded_cents, payment.amount_cents)


def _bill_first(payment: Payment, cents: int, bill_room: int) -> tuple[int, int]:
    """Split money going back: up to ``bill_room`` of it is the bill's, the rest the fee's.

    A payment without a fee has only the bill's money, whatever its figures say.
    """
    if not payment.fee_cents:
        return cents, 0
    bill = min(cents, max(bill_room, 0))
    return bill, cents - bill


def record_refund(payment: Payment, refund: RefundResult) -> bool:
    """Record a Stripe refund of ``payment`` once by its id: −amount, the amount owed again.

    A refund Stripe did not carry out (failed, canceled, refused) moved nothing and is not recorded.
    Returns True when this call recorded it.
    """
    if not refund.money_moved:
        return False
    entry_id = f"re_{refund.refund_id}"
    if payment.fee_cents:
        # The split depends on what was refunded before: one refund of this payment at a time.
        _lock(payment)
        if _recorded(entry_id):
            return False
    bill, fee = _bill_first(payment, refund.amount_cents, payment.amount_cents - bill_refunded_cents(payment))
    added = _add_parts(payment, REFUND, entry_id, -bill, -fee, refund.created_at or utcnow())
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
        _owe_more(payment, bill)
        db.session.refresh(payment)
        logger.info("refund %s of payment %s recorded: %s cents (%s of them the fee)",
                    refund.refund_id, payment.id, refund.amount_cents, fee)
    return added


def record_dispute(payment: Payment, dispute_id: str, amount_cents: int, occurred_at: datetime | None) -> bool:
    """Record a chargeback's withdrawal once: −amount on the day Stripe took it, the bill's part owed again."""
    entry_id = f"dp_{dispute_id}"
    if payment.fee_cents and _recorded(entry_id):
        return False
    bill, fee = _bill_first(payment, amount_cents, payment.amount_cents - bill_refunded_cents(payment))
    added = _add_parts(payment, DISPUTE, entry_id, -bill, -fee, occurred_at or utcnow())
    if added:
        _owe_more(payment, bill)
        logger.info("dispute %s of payment %s recorded: %s cents (%s of them the fee)", dispute_id, payment.id,
                    amount_cents, fee)
    return added


def record_dispute_won(
    payment: Payment, dispute_id: str, amount_cents: int | None, occurred_at: datetime | None
) -> bool:
    """Record a won dispute once: the money back (``amount_cents``, else what the dispute took), owed no more.

    Nothing is recorded when the dispute never took money (an inquiry): there is nothing to give back.
    """
    taken = {
        entry: cents
        for entry, cents in db.session.execute(
            sa.select(MoneyMovement.entry_id, MoneyMovement.amount_cents).where(
                MoneyMovement.entry_id.in_((f"dp_{dispute_id}", f"dp_{dispute_id}{FEE_SUFFIX}"))
            )
        )
    }
    if not taken:
        return False
    bill_taken = -taken.get(f"dp_{dispute_id}", 0)
    amount = -sum(taken.values()) if amount_cents is None else amount_cents
    entry_id = f"dw_{dispute_id}"
    if payment.fee_cents and _recorded(entry_id):
        return False
    # The bill's part comes back first, as it was taken first.
    bill, fee = _bill_first(payment, amount, bill_taken)
    added = _add_parts(payment, DISPUTE_WON, entry_id, bill, fee, occurred_at or utcnow())
    if added:
        _owe_more(payment, -bill)
        logger.info("won dispute %s of payment %s recorded: %s cents", dispute_id, payment.id, amount)
    return added


def _add_parts(payment: Payment, type_: str, entry_id: str, bill: int, fee: int, occurred_at: datetime) -> bool:
    """Add a movement's bill row (``entry_id``) and fee row (``entry_id:fee``), each when not zero,
    together or not at all; True when added."""
    rows = []
    if bill or not fee:
        rows.append(MoneyMovement(entry_id=entry_id, type=type_, amount_cents=bill, payment_id=payment.id,
                                  occurred_at=occurred_at))
    if fee:
        rows.append(MoneyMovement(entry_id=entry_id + FEE_SUFFIX, type=FEE, amount_cents=fee, payment_id=payment.id,
                                  occurred_at=occurred_at))
    if len(rows) == 1:
        return _add(rows[0])
    if _recorded(entry_id):
        return False
    try:
        with db.session.begin_nested():
            db.session.add_all(rows)
    except IntegrityError:
        return False  # another process recorded the same fact a moment ago: theirs counts
    return True


def _recorded(entry_id: str) -> bool:
    """A movement of this fact is on record, as its bill row or its fee row."""
    found = db.session.scalar(
        sa.select(MoneyMovement.id).where(MoneyMovement.entry_id.in_((entry_id, entry_id + FEE_SUFFIX))).limit(1)
    )
    return found is not None


def _lock(payment: Payment) -> None:
    """Hold the payment's row until the transaction ends (PostgreSQL; SQLite writes one at a time)."""
    # Read again under the lock: what another transaction refunded meanwhile counts in the split.
    db.session.execute(
        sa.select(Payment).where(Payment.id == payment.id).with_for_update().execution_options(populate_existing=True)
    )


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
