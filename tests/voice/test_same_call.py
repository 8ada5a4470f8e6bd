"""On the same call, through the real webhooks signed like Twilio: the past-due amount, the last
payments, and paying another account; the worker sends each receipt. English and Spanish."""

import csv
import io
import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from helpers import ZIP, CallActions

from ivr.billing.payments_csv import export_payments
from ivr.extensions import db
from ivr.models import Account, Payment, VerificationFailure
from ivr.outbox.sms import SandboxSmsSender
from ivr.outbox.texts import run_once

pytestmark = pytest.mark.usefixtures("stripe_api")

SPANISH = {"language": "es"}


def identify(call, lang="en", factor=ZIP):
    """Greeting (2 for Spanish), 1 for the account on the caller ID (or the first listed), its ZIP code."""
    call.start()
    if lang == "es":
        call.press("2")
    else:
        call.silence()
    call.press("1")
    return call.press(factor)


def account(app, number="12345001"):
    with app.app_context():
        return db.session.scalar(sa.select(Account).where(Account.account_number == number))


def succeeded(app):
    """Succeeded payments, oldest first, as (account number, amount, confirmation number)."""
    with app.app_context():
        return [
            tuple(row)
            for row in db.session.execute(
                sa.select(Account.account_number, Payment.amount_cents, Payment.confirmation_number)
                .join(Account, Payment.account_id == Account.id)
                .where(Payment.status == "succeeded")
                .order_by(Payment.id)
            )
        ]


def deliver(app):
    """One ``ivr worker --once`` pass: every text sent, as (to, body)."""
    sender = SandboxSmsSender()
    with app.app_context():
        run_once(db.session, sender, default_tz=app.config["ORG_TIMEZONE"])
    return [(to, body) for to, body, _sid in sender.sent]


def confirmation_in(said):
    match = re.search(r"(?:Confirmation number|Número de confirmación:) ((?:\d ){7}\d)", said)
    assert match, said
    return match.group(1).replace(" ", "")


# --- past due ---------------------------------------------------------------------------------

PAST_DUE_OPTION = {
    "en": "To pay the past-due forty dollars, press 2. Recent payments, 3. Another amount, 4.",
    "es": "Para pagar lo vencido, cuarenta dólares, oprima 2. Sus pagos recientes, el 3. Otra cantidad, el 4.",
}
PAID_FORTY = {"en": "Approved: forty dollars.", "es": "Pago aprobado: cuarenta dólares."}


@pytest.mark.parametrize("lang", ["en", "es"])
def test_a_past_due_member_pays_the_past_due_amount_with_2(app, client, make_account, stripe_api, lang):
    make_account(past_due_cents=4000)
    call = CallActions(client)
    identify(call, lang)
    assert PAST_DUE_OPTION[lang] in call.said()
    call.press("2")
    call.pay("pm_card_visa")
    assert PAID_FORTY[lang] in call.said()

    assert [c["amount"] for c in stripe_api.successful_charges] == [4000]
    after = account(app)
    assert after.balance_cents == 12345 - 4000 and after.past_due_cents == 0
    (to, body), = deliver(app)
    assert to == "+12025550143" and "$40.00" in body and "$83.45" in body  # paid, and what remains


@pytest.mark.parametrize("lang", ["en", "es"])
def test_an_account_with_nothing_past_due_keeps_2_for_a_different_amount(client, make_account, lang):
    make_account()
    call = CallActions(client)
    identify(call, lang)
    said = call.said()
    assert {"en": "past-due", "es": "vencid"}[lang] not in said
    assert {"en": "Another amount, 2. Recent payments, 3.",
            "es": "Otra cantidad, el 2. Sus pagos recientes, el 3."}[lang] in said
    call.press("2")
    assert call.root.xpath("./Gather/@finishOnKey") == ["#"]  # the amount is keyed


# --- history ----------------------------------------------------------------------------------

def paid(app, account_id, when, cents, channel, status="succeeded", **extra):
    with app.app_context():
        n = db.session.scalar(sa.select(sa.func.count(Payment.id))) + 1
        db.session.add(Payment(attempt_key=f"history:{n}", account_id=account_id, amount_cents=cents,
                               channel=channel, status=status, paid_at=when,
                               confirmation_number=f"7000000{n}" if status != "declined" else None, **extra))
        db.session.commit()


HISTORY = {
    "en": ("Your last three payments. "
           "On Friday, November twentieth, eighty-four dollars and seventeen cents, by phone. "
           "On Friday, October second, fifty dollars, with an agent. "
           "On Tuesday, September first, one hundred twenty dollars, on a call from us. "
           "For the menu, press 1."),
    "es": ("Sus últimos tres pagos. "
           "Pagó ochenta y cuatro dólares con diecisiete centavos el viernes veinte de noviembre, por teléfono. "
           "Pagó cincuenta dólares el viernes dos de octubre, con un agente. "
           "Pagó ciento veinte dólares el martes primero de septiembre, en una llamada que le hicimos. "
           "Para volver al menú, oprima 1."),
}


@pytest.mark.parametrize("lang", ["en", "es"])
def test_3_says_the_last_three_succeeded_payments_in_the_members_local_time(app, client, make_account, lang):
    me = make_account()
    other = make_account(account_number="99999001", phone="+12025550199")
    # 03:30 UTC on the 21st is 10:30 pm on Friday the 20th in Washington (the phone on file's zone).
    paid(app, me, datetime(2026, 11, 21, 3, 30, tzinfo=UTC), 8417, "ivr")
    paid(app, me, datetime(2026, 11, 22, 15, 0, tzinfo=UTC), 2000, "ivr", status="declined")
    paid(app, me, datetime(2026, 11, 10, 15, 0, tzinfo=UTC), 3000, "ivr", status="refunded", refunded_cents=3000)
    paid(app, me, datetime(2026, 11, 23, 15, 0, tzinfo=UTC), 6000, "ivr", status="disputed")
    paid(app, me, datetime(2026, 10, 2, 16, 0, tzinfo=UTC), 5000, "agent")
    paid(app, me, datetime(2026, 9, 1, 16, 0, tzinfo=UTC), 12000, "callback")
    paid(app, me, datetime(2026, 8, 3, 16, 0, tzinfo=UTC), 999, "ivr")  # a fourth succeeded: not said
    paid(app, other, datetime(2026, 11, 25, 16, 0, tzinfo=UTC), 4444, "ivr")  # someone else's

    call = CallActions(client)
    identify(call, lang)
    call.press("3")
    said = call.said()
    assert said.startswith(HISTORY[lang]), said
    call.silence()  # heard them: the menu again
    assert {"en": "To pay in full, press 1.", "es": "Para pagarlo todo, oprima 1."}[lang] in call.said()
    call.press("3")
    call.press("1")
    assert {"en": "Your balance is", "es": "Su saldo es de"}[lang] in call.said()


@pytest.mark.parametrize(
    ("lang", "words"),
    [("en", "There are no card payments on record."),
     ("es", "No hay pagos con tarjeta registrados.")],
)
def test_an_account_never_paid_by_card_hears_so(client, make_account, lang, words):
    make_account()
    call = CallActions(client)
    identify(call, lang)
    call.press("3")
    assert call.said().startswith(words)


# --- another account --------------------------------------------------------------------------

ANOTHER = {"en": "Another account, 2.", "es": "Otra cuenta, el 2."}
OFFER_5002 = {"en": "For the account ending in 5 0 0 2", "es": "Para la cuenta que termina en 5 0 0 2"}


@pytest.mark.parametrize("lang", ["en", "es"])
def test_after_paying_one_account_the_caller_pays_another_verified_afresh(app, client, make_account, stripe_api, lang):
    make_account(account_number="12345001", balance_cents=8417)
    make_account(account_number="12345002", balance_cents=21250)
    call = CallActions(client)
    identify(call, lang)  # two accounts on the phone: 1 picks the first listed, ending 5001
    call.press("1")
    call.pay("pm_card_visa")
    first = confirmation_in(call.said())
    assert ANOTHER[lang] in call.said()

    call.press("2")
    assert OFFER_5002[lang] in call.said() and "5 0 0 1" not in call.said()
    call.press("1")
    call.press("99999")  # the second account asks for its own second factor: a wrong one does not pass
    assert {"en": "didn't match our records", "es": "no coincide con nuestros registros"}[lang] in call.said()
    with app.app_context():
        (failure,) = db.session.scalars(sa.select(VerificationFailure)).all()
        assert failure.account_id == account(app, "12345002").id
    assert call.root.xpath("./Gather/@finishOnKey") == ["#"]  # now the account number is keyed
    call.press("12345002")
    call.press("0143")
    assert {"en": "two hundred twelve dollars and fifty cents", "es": "doscientos doce dólares con cincuenta centavos"}[
        lang] in call.said()
    call.press("1")
    call.pay("pm_card_mastercard")
    second = confirmation_in(call.said())
    call.silence()
    assert call.root.xpath("./Gather")  # asked once whether to save this card
    call.silence()  # no answer: nothing saved
    assert call.root.xpath("./Hangup")

    assert succeeded(app) == [("12345001", 8417, first), ("12345002", 21250, second)]
    assert account(app, "12345001").balance_cents == 0 and account(app, "12345002").balance_cents == 0
    texts = sorted(body for _, body in deliver(app))
    assert len(texts) == 2
    receipt = {"en": "payment of {} received for account ending {}",
               "es": "recibimos su pago de {} para la cuenta que termina en {}"}
    assert [(receipt[lang].format("$84.17", "5001") in body, first in body) for body in texts if "5001" in body] == [(True, True)]
    assert [(receipt[lang].format("$212.50", "5002") in body, second in body) for body in texts if "5002" in body] == [
        (True, True)]
    assert deliver(app) == []  # each receipt once


def test_a_locked_second_account_is_refused_although_the_first_was_verified(app, client, make_account, stripe_api):
    from ivr.models import utcnow

    make_account(account_number="12345001", balance_cents=8417)
    second = make_account(account_number="12345002", balance_cents=21250)
    with app.app_context():
        for _ in range(5):  # someone guessed at it from another phone a moment ago
            db.session.add(VerificationFailure(account_id=second, call_sid="CAguess", created_at=utcnow()))
        db.session.commit()
    call = CallActions(client)
    call.start()
    call.silence()
    call.press("1")
    call.press(ZIP)
    call.press("1")
    call.pay("pm_card_visa")
    call.press("2")
    call.press("1")
    call.press(ZIP)  # the right ZIP: still locked, and said like any miss
    assert "that didn't match our records" in call.said()
    assert "Your balance" not in call.said()
    assert [number for number, _, _ in succeeded(app)] == ["12345001"]


def test_an_anonymous_caller_keys_the_next_account_number(app, client, make_account, stripe_api):
    make_account(account_number="12345001", balance_cents=8417)
    make_account(account_number="55555001", phone="+12025550199", balance_cents=1500)
    call = CallActions(client, from_="anonymous")
    call.start()
    call.silence()
    call.press("12345001")
    call.press("0143")
    call.press("1")
    call.pay("pm_card_visa")
    call.press("2")
    assert "Enter the account number" in call.said()
    call.press("55555001")
    call.press("0199")
    assert "fifteen dollars" in call.said()
    call.press("1")
    call.pay("pm_card_visa")
    assert "Approved: fifteen dollars." in call.said()
    assert [c["amount"] for c in stripe_api.successful_charges] == [8417, 1500]


# --- no convenience fee (the default) ---------------------------------------------------------

@pytest.mark.parametrize("lang", ["en", "es"])
def test_with_no_fee_set_nothing_about_a_fee_is_said_texted_or_posted(app, client, make_account, stripe_api, lang):
    assert not app.config["CONVENIENCE_FEE_CENTS"]
    make_account()
    call = CallActions(client)
    identify(call, lang)
    heard = [call.said()]
    call.press("1")
    heard.append(call.said())
    assert call.root.xpath("./Pay")
    call.pay("pm_card_visa")
    heard.append(call.said())
    words = " ".join(heard).lower()
    assert not any(word in words for word in ("fee", "total", "cargo"))
    assert [c["amount"] for c in stripe_api.successful_charges] == [12345]
    assert "fee_cents" not in stripe_api.successful_charges[0]["metadata"]
    (_, text), = deliver(app)
    assert not any(word in text.lower() for word in ("fee", "charged", "cargo", "total"))
    out = io.StringIO()
    with app.app_context():
        export_payments(db.session, out)
    assert [row["type"] for row in csv.DictReader(io.StringIO(out.getvalue()))] == ["payment"]
