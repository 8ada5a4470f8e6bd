"""Paying later's fixtures: a frozen clock, an account with (or without) a card on file, calls that reach key 5."""

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from helpers import CallActions, ZIP

from ivr.extensions import db
from ivr.later.models import AutopayBill, AutopayEnrollment, ScheduledPayment
from ivr.models import Account, Payment
from ivr.money.models import SavedCard
from ivr.outbox.models import OutboxMessage

# Tuesday 1 December 2026, 10:00 in New York (ORG_TIMEZONE's default): 15:00 UTC.
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
DUE = date(2026, 12, 10)  # a Thursday
MEMBER = "+12025550143"


class Clock:
    """The clock paying later reads (``ivr.reminders.clock.now``); tests move it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def set(self, now: datetime) -> None:
        self.now = now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock(NOW)
    monkeypatch.setattr("ivr.reminders.clock.now", lambda: c.now)
    return c


@pytest.fixture
def account_id(make_account):
    """An active account owing $123.45 due DUE, $23.45 of it past due, English, phone MEMBER."""
    return make_account(balance_cents=12345, past_due_cents=2345, due_date=DUE)


def save_card(app, account_id, payment_method="pm_card_visa", brand="visa", last4="4242"):
    """Put a card on file for the account, as ``saved_cards.save_from_payment`` leaves it."""
    with app.app_context():
        db.session.add(SavedCard(account_id=account_id, stripe_customer="cus_member", stripe_payment_method=payment_method,
                                 card_brand=brand, card_last4=last4, consent_channel="ivr",
                                 consent_words="To save this card for next time, press 1."))
        db.session.commit()


@pytest.fixture
def saved_card(app, account_id):
    save_card(app, account_id)
    return account_id


def reach_later_menu(client, *, spanish=False, call_sid=None):
    """Call, identify by caller ID, hear the balance, press 5."""
    call = CallActions(client, from_=MEMBER, call_sid=call_sid)
    call.start()
    if spanish:
        call.press("2")
    else:
        call.silence()
    call.press("1")
    call.press(ZIP)  # the service ZIP code: the caller-ID path's second factor
    call.press("5")
    return call


def rows(app, model, *order):
    with app.app_context():
        found = db.session.scalars(sa.select(model).order_by(*(order or (model.id,)))).all()
        db.session.expunge_all()
        return found


def scheduled(app):
    return rows(app, ScheduledPayment)


def bills(app):
    return rows(app, AutopayBill)


def enrollments(app):
    return rows(app, AutopayEnrollment)


def payments(app):
    return rows(app, Payment)


def texts(app, kind=None):
    found = rows(app, OutboxMessage)
    return [m for m in found if kind is None or m.kind == kind]


def balance(app, account_id):
    with app.app_context():
        return db.session.get(Account, account_id).balance_cents
