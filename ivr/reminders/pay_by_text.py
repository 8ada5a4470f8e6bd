"""Pay by text: ``PAY`` with a card on file gets an offer naming the amount and the card; ``YES`` pays it once.

The offer is for the account's whole balance (never more), made only to the account's phone on
file, and lives 10 minutes. ``YES`` (``SI``/``SÍ``) from that number claims the number's newest
offer with a conditional update and charges it through ``saved_cards.charge_saved`` (channel
``sms``, Stripe idempotency key ``sms:<offer id>``), so two deliveries of one ``YES`` charge once:
the second finds the offer already claimed. A bill (account and due date) has at most one offer
being charged or paid, by a partial unique index. The receipt is the one every payment gets,
queued by the charge step; the answer to ``YES`` only says it went through.
"""

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

import prompts
from flows.decisions import brand_word
from prompts import amounts

from ..extensions import db
from ..masking import mask
from ..models import Account, Payment
from ..money import saved_cards
from ..money.charge import APPROVED, DECLINED
from ..money.models import SavedCard
from ..phones import national
from . import clock
from .models import TextPayOffer
from .settings import settings

logger = logging.getLogger(__name__)

OFFER_MINUTES = 10
OFFER_LIFETIME = timedelta(minutes=OFFER_MINUTES)
# A YES finds the number's newest offer of the last day; an older one is no longer "our text".
LOOKBACK = timedelta(hours=24)
# A claim older than this, its payment still unsettled, was left by a process that died: a YES may
# finish it, with the same idempotency key.
STILL_CHARGING = timedelta(seconds=60)

OFFERED, CHARGING, PAID, DECLINED_STATUS, EXPIRED, REPLACED = (
    "offered", "charging", "paid", "declined", "expired", "replaced",
)
HOLDING = (CHARGING, PAID)  # the statuses the one-per-bill index counts
PAID_PAYMENT = ("succeeded", "refunded", "disputed")


def _words(key: str, lang: str, **params) -> str:
    cfg = settings()
    return prompts.text(f"sms.{key}", lang, org=cfg.org, pay_line=national(cfg.pay_line),
                        minutes=OFFER_MINUTES, **params)


def card_words(brand: str | None, last4: str | None, lang: str) -> str:
    """"Visa ending in 4242" in ``lang``."""
    return prompts.text("sms.pay_card", lang, brand=prompts.text(brand_word(brand), lang), card_last4=last4 or "")


def _offer_card(offer: TextPayOffer, lang: str) -> str:
    return card_words(offer.card_brand, offer.card_last4, lang)


def _sync(offer: TextPayOffer) -> None:
    """Bring a charging offer in line with its payment, however that was settled (Stripe's webhook too)."""
    if offer.status != CHARGING or offer.payment_id is None:
        return
    status = db.session.scalar(sa.select(Payment.status).where(Payment.id == offer.payment_id))
    if status in PAID_PAYMENT:
        offer.status = PAID
    elif status == "declined":
        offer.status = DECLINED_STATUS


def _holding_offer(account: Account) -> TextPayOffer | None:
    """This bill's offer that is being charged or was paid, if any."""
    offers = db.session.scalars(
        sa.select(TextPayOffer)
        .where(TextPayOffer.account_id == account.id, TextPayOffer.due_date == account.due_date,
               TextPayOffer.status.in_(HOLDING))
        .execution_options(populate_existing=True)
    ).all()
    for offer in offers:
        _sync(offer)
    return next((o for o in offers if o.status in HOLDING), None)


def offer(account: Account, card: SavedCard, phone: str, lang: str) -> str:
    """Record an offer of the whole balance with the saved ``card`` and return the text that makes it.

    ``phone`` is the sender, the account's phone on file. A newer offer replaces the number's
    open ones, so a ``YES`` always answers the last text we sent. Commits.
    """
    now = clock.now()
    holding = _holding_offer(account)
    if holding is not None:
        db.session.commit()
        if holding.status == PAID:
            return _words("pay_bill_paid_by_text", lang, confirmation=_confirmation(holding))
        # A charge left unfinished (Stripe unreachable) is finished by a YES, never by a new offer.
        return _words("pay_unavailable" if _abandoned(holding, now) else "pay_in_progress", lang)
    db.session.execute(
        sa.update(TextPayOffer)
        .where(TextPayOffer.from_number == phone, TextPayOffer.status == OFFERED)
        .values(status=REPLACED)
        .execution_options(synchronize_session=False)
    )
    made = TextPayOffer(
        account_id=account.id,
        due_date=account.due_date,
        amount_cents=account.balance_cents,
        saved_card_id=card.id,
        stripe_payment_method=card.stripe_payment_method,
        card_brand=card.card_brand,
        card_last4=card.card_last4,
        from_number=phone,
        language=lang,
        status=OFFERED,
        created_at=now,
        expires_at=now + OFFER_LIFETIME,
    )
    db.session.add(made)
    db.session.commit()
    logger.info("text payment offer %s for account %s to %s", made.id, mask(account.account_number), mask(phone))
    return _words("pay_offer", lang, amount=amounts.dollars(made.amount_cents), card=_offer_card(made, lang),
                  last4=account.last4)


def _confirmation(offer: TextPayOffer) -> str:
    return db.session.scalar(sa.select(Payment.confirmation_number).where(Payment.id == offer.payment_id)) or ""


def _newest_offer(phone: str, now: datetime) -> TextPayOffer | None:
    return db.session.scalar(
        sa.select(TextPayOffer)
        .where(TextPayOffer.from_number == phone, TextPayOffer.created_at > now - LOOKBACK)
        .order_by(TextPayOffer.created_at.desc(), TextPayOffer.id.desc())
        .limit(1)
        .execution_options(populate_existing=True)
    )


def confirm(phone: str, forced_lang: str | None) -> str | None:
    """Answer a ``YES`` from ``phone``: pay its newest offer once, or say plainly why nothing was charged.

    Returns None when the number has no offer of the last day (the caller decides what that
    means: an opt-in, or "no payment is waiting"). ``forced_lang`` is the keyword's language
    (``SI`` answers in Spanish); otherwise the offer's. Commits.
    """
    now = clock.now()
    found = _newest_offer(phone, now)
    if found is None:
        return None
    lang = prompts.language(forced_lang or found.language)
    answer = _confirm(found, phone, lang, now)
    db.session.commit()
    return answer


def _confirm(offer: TextPayOffer, phone: str, lang: str, now: datetime) -> str:
    _sync(offer)
    if offer.status in (PAID, DECLINED_STATUS):
        return _settled_answer(offer, lang)
    if offer.status in (EXPIRED, REPLACED) or (offer.status == OFFERED and offer.expires_at <= now):
        offer.status = EXPIRED if offer.status == OFFERED else offer.status
        return _words("pay_expired", lang)
    if offer.status == CHARGING and not _abandoned(offer, now):
        return _words("pay_in_progress", lang)

    account = db.session.get(Account, offer.account_id, populate_existing=True)
    assert account is not None
    if account.phone != phone:
        # The offer belongs to the phone on file; this number no longer is it.
        return _words("pay_no_offer", lang)
    if account.status != "active":
        return prompts.text("sms.pay_office_only", lang, org=settings().org, last4=account.last4,
                            phone=national(settings().office_phone))
    if account.balance_cents != offer.amount_cents or account.due_date != offer.due_date:
        if account.balance_cents <= 0:
            return prompts.text("sms.pay_nothing_due", lang, org=settings().org, last4=account.last4)
        return _words("pay_balance_changed", lang)
    card = saved_cards.saved_card_of(account.id)
    if card is None or card.stripe_payment_method != offer.stripe_payment_method:
        return _words("pay_card_changed", lang)

    if not _claim(offer, now):
        db.session.rollback()
        return _answer_after_losing(offer, lang, now)
    return _charge(offer, card, phone, lang)


def _abandoned(offer: TextPayOffer, now: datetime) -> bool:
    """A charging offer nobody is charging any more: released after Stripe could not be reached, or
    claimed by a process that has been silent too long to be still at it (it died)."""
    return offer.claimed_at is None or offer.claimed_at <= now - STILL_CHARGING


def _claim(offer: TextPayOffer, now: datetime) -> bool:
    """Take the offer for this request alone (a conditional update); False when another request has it.

    An offered offer becomes charging; an abandoned charging one is taken again by moving its
    claim time, so two retries of it cannot both charge.
    """
    if offer.status == OFFERED:
        condition = sa.and_(TextPayOffer.status == OFFERED, TextPayOffer.expires_at > now)
    else:
        condition = sa.and_(TextPayOffer.status == CHARGING,
                            TextPayOffer.claimed_at.is_(None) if offer.claimed_at is None
                            else TextPayOffer.claimed_at == offer.claimed_at)
    # No savepoint: the claim is the transaction's first write, so a refusal rolls back nothing
    # else, and on SQLite the claim stays in one transaction with the payment attempt.
    try:
        taken = db.session.execute(
            sa.update(TextPayOffer)
            .where(TextPayOffer.id == offer.id, condition)
            .values(status=CHARGING, claimed_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
    except IntegrityError:
        db.session.rollback()
        return False  # another offer of this bill is being charged or was paid
    db.session.expire(offer)  # the row changed under the ORM's copy
    return taken == 1


def _answer_after_losing(offer: TextPayOffer, lang: str, now: datetime) -> str:
    """What a YES that lost the claim hears: the winner's state, read fresh."""
    fresh = db.session.get(TextPayOffer, offer.id, populate_existing=True)
    assert fresh is not None
    _sync(fresh)
    if fresh.status in (PAID, DECLINED_STATUS):
        return _settled_answer(fresh, lang)
    if fresh.status == CHARGING:
        return _words("pay_in_progress", lang)
    if fresh.status == OFFERED and fresh.expires_at <= now:
        fresh.status = EXPIRED
        return _words("pay_expired", lang)
    account = db.session.get(Account, fresh.account_id)
    assert account is not None
    holding = _holding_offer(account)  # the claim broke the one-per-bill rule: say who holds the bill
    if holding is not None and holding.status == PAID:
        return _words("pay_bill_paid_by_text", lang, confirmation=_confirmation(holding))
    return _words("pay_in_progress", lang)


def _charge(offer: TextPayOffer, card: SavedCard, phone: str, lang: str) -> str:
    """Charge the claimed offer off-session; the claim and the attempt are committed together."""
    offer_id = offer.id

    def link_payment(payment: Payment) -> None:
        db.session.execute(
            sa.update(TextPayOffer)
            .where(TextPayOffer.id == offer_id)
            .values(payment_id=payment.id)
            .execution_options(synchronize_session=False)
        )

    outcome = saved_cards.charge_saved(
        card, offer.amount_cents, f"sms:{offer_id}", channel="sms", language=lang, caller=phone,
        extra_metadata={"text_offer": str(offer_id)}, before_commit=link_payment,
    )
    fresh = db.session.get(TextPayOffer, offer_id, populate_existing=True)
    assert fresh is not None
    if outcome.status == APPROVED:
        fresh.status = PAID
        logger.info("text payment offer %s paid (payment %s)", offer_id, outcome.payment_id)
        return _words("pay_approved", lang)
    if outcome.in_progress:
        # Stripe is still running a request with this key (another delivery's): it settles the payment.
        logger.info("text payment offer %s: another request is charging it", offer_id)
        return _words("pay_in_progress", lang)
    if outcome.status == DECLINED:
        fresh.status = DECLINED_STATUS
        logger.info("text payment offer %s declined (%s)", offer_id, outcome.decline_code)
        return _decline_answer(fresh, outcome.decline_code, lang)
    # Stripe could not be reached: the offer stays charging (the bill held, as the charge may have
    # gone through) but is released, so the next YES finishes it with the same key; Stripe's
    # webhook settles the payment if it went through meanwhile.
    fresh.claimed_at = None
    logger.warning("text payment offer %s: the processor could not be reached", offer_id)
    return _words("pay_unavailable", lang)


def _settled_answer(offer: TextPayOffer, lang: str) -> str:
    if offer.status == PAID:
        return _words("pay_already_paid", lang, confirmation=_confirmation(offer))
    code = db.session.scalar(sa.select(Payment.decline_code).where(Payment.id == offer.payment_id))
    return _decline_answer(offer, code, lang)


def _decline_answer(offer: TextPayOffer, code: str | None, lang: str) -> str:
    if code == "authentication_required":
        return _words("pay_authentication", lang)
    return _words("pay_declined", lang, card=_offer_card(offer, lang))
