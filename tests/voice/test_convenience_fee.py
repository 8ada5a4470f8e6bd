"""A convenience fee (``CONVENIENCE_FEE_CENTS``) through the real webhooks: said with the total before
card entry, accepted by a key, charged once with the payment, kept apart from it in the database, the
receipt and the posting file. English and Spanish."""

import csv
import io
import re

import pytest
import sqlalchemy as sa
from helpers import ZIP, CallActions

from ivr.billing.payments_csv import export_payments
from ivr.extensions import db
from ivr.models import Account, Payment
from ivr.outbox.sms import SandboxSmsSender
from ivr.outbox.texts import run_once

pytestmark = pytest.mark.usefixtures("stripe_api")

FEE = 250


@pytest.fixture
def app_config(app_config):
    app_config["CONVENIENCE_FEE_CENTS"] = FEE
    return app_config


def identify(call, lang="en"):
    call.start()
    if lang == "es":
        call.press("2")
    else:
        call.silence()
    call.press("1")
    return call.press(ZIP)


def payments(app):
    with app.app_context():
        return db.session.scalars(sa.select(Payment).order_by(Payment.id)).all()


def balance(app):
    with app.app_context():
        return db.session.scalar(sa.select(Account.balance_cents))


def posting_file(app):
    out = io.StringIO()
    with app.app_context():
        export_payments(db.session, out)
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def deliver(app):
    sender = SandboxSmsSender()
    with app.app_context():
        run_once(db.session, sender, default_tz=app.config["ORG_TIMEZONE"])
    return [body for _to, body, _sid in sender.sent]


OFFER = {
    "en": ("Paying by card by phone has a fee of two dollars and fifty cents, so your card will be charged one "
           "hundred twenty-five dollars and ninety-five cents: one hundred twenty-three dollars and forty-five cents "
           "for your bill, plus the fee. To accept and enter your card, press 1."),
    "es": ("Pagar con tarjeta por teléfono tiene un cargo de dos dólares con cincuenta centavos; se cobrarán ciento "
           "veinticinco dólares con noventa y cinco centavos a su tarjeta: ciento veintitrés dólares con cuarenta y "
           "cinco centavos de su factura, más el cargo. Para aceptar y dar su tarjeta, oprima 1."),
}
APPROVED = {
    "en": "Approved: one hundred twenty-three dollars and forty-five cents, plus the fee of two dollars and fifty "
          "cents.",
    "es": "Pago aprobado: ciento veintitrés dólares con cuarenta y cinco centavos, más el cargo de dos dólares con "
          "cincuenta centavos.",
}
RECEIPT = {
    "en": "payment of $123.45 received for account ending 5001 on {when}, plus a $2.50 convenience fee "
          "($125.95 charged). Confirmation {confirmation}. Remaining balance $0.00.",
    "es": "recibimos su pago de $123.45 para la cuenta que termina en 5001 el {when}, y un cargo por servicio de "
          "$2.50 ($125.95 en total). Confirmación {confirmation}. Saldo restante $0.00.",
}


@pytest.mark.parametrize("lang", ["en", "es"])
def test_the_fee_is_said_accepted_and_charged_once_with_the_payment(app, client, make_account, stripe_api, lang):
    make_account()
    call = CallActions(client)
    identify(call, lang)
    call.press("1")
    assert call.root.xpath("./Pay") == [] and call.said() == OFFER[lang] + {
        "en": " To go back, press 2. To end the call, press 9.",
        "es": " Para volver, el 2. Para colgar, el 9."}[lang]
    call.press("1")
    assert call.root.xpath("./Pay")
    assert {"en": ": one hundred twenty-five dollars and ninety-five cents in all",
            "es": ": ciento veinticinco dólares con noventa y cinco centavos en total"}[lang] in call.said()
    pay_url = call.pay_action()
    call.pay("pm_card_visa")
    assert APPROVED[lang] in call.said()
    call.post(pay_url, call.last_pay_params)  # Twilio delivers the result again: nothing more is charged

    (charge,) = stripe_api.successful_charges
    assert len(stripe_api.intents) == 1
    assert charge["amount"] == 12345 + FEE and charge["metadata"]["fee_cents"] == "250"
    (payment,) = payments(app)
    assert (payment.amount_cents, payment.fee_cents, payment.status) == (12345, FEE, "succeeded")
    assert balance(app) == 0  # the bill drops by the amount only

    (text,) = deliver(app)
    confirmation = payment.confirmation_number
    when = re.search(r" (?:on|el) (.+?), (?:plus|y un)", text).group(1)
    assert text.endswith(RECEIPT[lang].format(when=when, confirmation=confirmation)), text

    rows = posting_file(app)
    assert [(r["type"], r["amount"], r["entry_id"], r["confirmation_number"]) for r in rows] == [
        ("payment", "123.45", f"pay_{payment.id}", confirmation),
        ("fee", "2.50", f"pay_{payment.id}:fee", confirmation),
    ]
    assert sum(int(r["amount"].replace(".", "")) for r in rows) == charge["amount"]


@pytest.mark.parametrize(("key", "ends"), [("2", "To pay in full, press 1."), ("9", "Goodbye.")])
def test_refusing_the_fee_charges_nothing(app, client, make_account, stripe_api, key, ends):
    make_account()
    call = CallActions(client)
    identify(call)
    call.press("1")
    call.press(key)
    assert ends in call.said() and call.root.xpath("./Pay") == []
    assert stripe_api.intents == [] and payments(app) == [] and balance(app) == 12345


def test_a_keyed_amount_is_charged_with_the_fee_and_the_balance_drops_by_the_amount(app, client, make_account,
                                                                                     stripe_api):
    make_account()
    call = CallActions(client)
    identify(call)
    call.press("2")
    call.press("50*25")
    call.press("1")
    assert "your card will be charged fifty-two dollars and seventy-five cents" in call.said()
    call.press("1")
    call.pay("pm_card_visa_chargeDeclined")  # a decline: the next card still carries the accepted fee
    call.press("1")
    assert "plus the fee of two dollars and fifty cents" in call.said()
    call.pay("pm_card_visa")
    assert [c["amount"] for c in stripe_api.successful_charges] == [5025 + FEE]
    assert [(p.status, p.amount_cents, p.fee_cents) for p in payments(app)] == [
        ("declined", 5025, FEE), ("succeeded", 5025, FEE)]
    assert balance(app) == 12345 - 5025
    assert [r["type"] for r in posting_file(app)] == ["payment", "fee"]  # a decline moved no money
