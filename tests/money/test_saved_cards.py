"""Cards on file: saved only from an approved payment with consent, charged off-session once, forgotten at Stripe."""

import pytest
import sqlalchemy as sa

from ivr.extensions import db
from ivr.models import Account, Payment
from ivr.money import saved_cards
from ivr.money.charge import APPROVED, DECLINED, charge_token
from ivr.money.models import SavedCard
from ivr.outbox.models import OutboxMessage
from payments.sandbox import SandboxGateway

CALL_SID = "CA" + "1" * 32
WORDS = "To save this card for next time, press 1."


class DetachRecordingGateway(SandboxGateway):
    """The sandbox, noting what is detached and each charge's off-session flag and customer."""

    def __init__(self):
        super().__init__(webhook_secret="whsec_test_secret")
        self.detached = []
        self.charges = []

    def charge(self, **kwargs):
        self.charges.append(kwargs)
        return super().charge(**kwargs)

    def detach(self, payment_method_id):
        self.detached.append(payment_method_id)


@pytest.fixture
def gateway(app_config):
    gateway = DetachRecordingGateway()
    app_config.update(PAYMENT_GATEWAY="sandbox", GATEWAY=gateway)
    return gateway


@pytest.fixture
def account(gateway, app, make_account):
    account_id = make_account(balance_cents=20000, past_due_cents=0)
    with app.app_context():
        yield db.session.get(Account, account_id)


def keypad_payment(account, token="pm_card_visa", key="CA1:4", customer="cus_sandbox_member"):
    outcome = charge_token(account, 2500, key, token, channel="ivr", call_sid=CALL_SID, language="es",
                           caller="+12025550143", customer=customer)
    db.session.commit()
    return outcome


def test_an_approved_keypad_payment_keeps_only_ids_brand_last_four_and_the_consent(account):
    payment = keypad_payment(account).payment

    card = saved_cards.save_from_payment(payment, channel="ivr", words=WORDS, call_sid=CALL_SID)

    stored = db.session.scalars(sa.select(SavedCard)).one()
    assert stored is card
    assert (stored.stripe_customer, stored.stripe_payment_method) == ("cus_sandbox_member", "pm_card_visa")
    assert (stored.card_brand, stored.card_last4) == ("visa", "4242")
    assert (stored.consent_words, stored.consent_call_sid, stored.consent_payment_id) == (WORDS, CALL_SID, payment.id)
    assert (stored.consent_channel, stored.consent_language) == ("ivr", "es")
    assert stored.saved_at is not None
    columns = {c.name for c in SavedCard.__table__.columns}
    assert columns == {"id", "account_id", "stripe_customer", "stripe_payment_method", "card_brand", "card_last4",
                       "saved_at", "consent_channel", "consent_call_sid", "consent_payment_id",
                       "consent_language", "consent_words"}


def test_a_declined_payment_or_one_without_a_stripe_customer_saves_nothing(account):
    declined = keypad_payment(account, token="pm_card_visa_chargeDeclined").payment
    no_customer = keypad_payment(account, key="CA1:5", customer=None).payment

    assert not saved_cards.can_save(declined) and not saved_cards.can_save(no_customer)
    for payment in (declined, no_customer):
        with pytest.raises(saved_cards.CannotSave):
            saved_cards.save_from_payment(payment, channel="ivr", words=WORDS)
    assert saved_cards.saved_card_of(account.id) is None


def test_saving_another_card_replaces_the_first_and_detaches_it_at_stripe(account, gateway):
    first = keypad_payment(account).payment
    saved_cards.save_from_payment(first, channel="ivr", words=WORDS)
    second = keypad_payment(account, token="pm_card_mastercard", key="CA2:4", customer="cus_other").payment

    saved_cards.save_from_payment(second, channel="ivr", words=WORDS)
    saved_cards.save_from_payment(second, channel="ivr", words=WORDS)  # a redelivered "1"

    card = db.session.scalars(sa.select(SavedCard)).one()
    assert (card.card_brand, card.card_last4, card.stripe_customer) == ("mastercard", "4444", "cus_other")
    assert gateway.detached == ["pm_card_visa"]


def test_the_saved_card_is_charged_off_session_once_with_a_receipt(account, gateway):
    card = saved_cards.save_from_payment(keypad_payment(account).payment, channel="ivr", words=WORDS)

    outcome = saved_cards.charge_saved(card, 4000, "saved:CA9:2", channel="ivr", language="en",
                                       caller="+12025550143", call_sid="CA" + "9" * 32)
    again = saved_cards.charge_saved(card, 4000, "saved:CA9:2", channel="ivr", language="en")
    db.session.commit()

    assert outcome.status == APPROVED and again.payment_id == outcome.payment_id
    assert gateway.charges[-1]["off_session"] is True
    assert gateway.charges[-1]["customer"] == "cus_sandbox_member"
    assert gateway.charges[-1]["metadata"]["saved_card"] == "yes"
    db.session.refresh(account)
    assert account.balance_cents == 20000 - 2500 - 4000
    receipts = db.session.scalars(sa.select(OutboxMessage.payment_id).where(OutboxMessage.kind == "receipt")).all()
    assert sorted(receipts) == sorted({outcome.payment_id, card.consent_payment_id})


@pytest.mark.parametrize(("token", "code"), [
    ("pm_card_chargeCustomerFail", "card_declined"),  # 4000000000000341: attaches, then fails
    ("pm_card_authenticationRequired", "authentication_required"),  # 4000002500003155
])
def test_stripes_off_session_test_cards_decline_with_their_reason(account, token, code):
    db.session.add(SavedCard(account_id=account.id, stripe_customer="cus_x", stripe_payment_method=token,
                             card_brand="visa", card_last4="0341", consent_channel="ivr", consent_words=WORDS))
    db.session.commit()
    card = saved_cards.saved_card_of(account.id)

    outcome = saved_cards.charge_saved(card, 4000, f"saved:{token}", channel="ivr", language="en")
    db.session.commit()

    assert (outcome.status, outcome.decline_code) == (DECLINED, code)
    db.session.refresh(account)
    assert account.balance_cents == 20000
    assert db.session.get(Payment, outcome.payment_id).status == "declined"


def test_4000000000000341_pays_on_the_keypad_so_it_can_be_saved(account):
    assert keypad_payment(account, token="pm_card_chargeCustomerFail").status == APPROVED


def test_forgetting_deletes_the_card_and_detaches_it(account, gateway):
    saved_cards.save_from_payment(keypad_payment(account).payment, channel="ivr", words=WORDS)

    assert saved_cards.forget(account, by="member") is True
    assert saved_cards.forget(account, by="member") is False

    assert saved_cards.saved_card_of(account.id) is None
    assert gateway.detached == ["pm_card_visa"]
