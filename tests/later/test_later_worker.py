"""``ivr worker`` charges scheduled payments on their day, once, whatever crashes or runs twice beside it."""

import threading
from datetime import date, timedelta
from urllib.parse import parse_qs

import pytest
from later_fixtures import (  # noqa: F401
    NOW,
    account_id,
    balance,
    clock,
    payments,
    save_card,
    saved_card,
    scheduled,
    texts,
)

from ivr.extensions import db
from ivr.later import scheduling, worker
from ivr.models import Account
from ivr.money import saved_cards
from payments import PaymentUnavailable

PAY_ON = date(2026, 12, 7)
CHARGE_AT = NOW.replace(day=7, hour=14)  # 9:00 in New York on the 7th


@pytest.fixture(autouse=True)
def _stripe(stripe_api):
    return stripe_api


def schedule(app, account_id, *, amount=5000, pay_on=PAY_ON, kept=None, lang="en", key="CA1:7"):
    with app.app_context():
        row = scheduling.schedule(db.session.get(Account, account_id), amount_cents=amount, pay_on=pay_on,
                                  created_key=key, call_sid="CA1", language=lang, now=NOW, kept=kept)
        db.session.commit()
        return row.id


def run(app, now):
    with app.app_context():
        try:
            return worker.run_pass(now)
        finally:
            db.session.remove()


def sent(request):
    return {k: v[0] for k, v in parse_qs(request.body if isinstance(request.body, str) else request.body.decode()).items()}


def test_a_scheduled_payment_is_charged_once_on_its_day_off_session_with_its_receipt(app, stripe_api, saved_card):
    row_id = schedule(app, saved_card)

    assert run(app, CHARGE_AT - timedelta(minutes=1)).total == 0
    assert stripe_api.requests == []
    report = run(app, CHARGE_AT)
    again = run(app, CHARGE_AT + timedelta(hours=3))

    assert (report.paid, again.total) == (1, 0)
    (request,) = stripe_api.requests
    form = sent(request)
    assert request.headers["Idempotency-Key"] == f"scheduled:{row_id}"
    assert (form["amount"], form["off_session"], form["confirm"]) == ("5000", "true", "true")
    assert (form["customer"], form["payment_method"]) == ("cus_member", "pm_card_visa")
    assert form["metadata[scheduled_payment_id]"] == str(row_id) and form["metadata[saved_card]"] == "yes"
    (payment,) = payments(app)
    assert (payment.channel, payment.status, payment.amount_cents) == ("scheduled", "succeeded", 5000)
    (row,) = scheduled(app)
    assert (row.status, row.payment_id) == ("paid", payment.id)
    assert balance(app, saved_card) == 12345 - 5000
    (receipt,) = texts(app, "receipt")
    assert receipt.to_number == "+12025550143" and receipt.body.startswith("Riverbend Electric Cooperative: payment of $50.00")
    assert payment.confirmation_number in receipt.body


def test_the_receipt_of_a_payment_scheduled_in_spanish_is_in_spanish(app, saved_card):
    schedule(app, saved_card, lang="es")
    run(app, CHARGE_AT)
    (receipt,) = texts(app, "receipt")
    assert receipt.body.startswith("Riverbend Electric Cooperative: recibimos su pago de $50.00")


def test_two_workers_at_once_charge_it_once(app, stripe_api, saved_card):
    schedule(app, saved_card)
    start = threading.Barrier(3)
    reports, errors = [], []

    def one_worker():
        start.wait()
        try:
            reports.append(run(app, CHARGE_AT))
        except Exception as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=one_worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert sorted(r.paid for r in reports) == [0, 0, 1]
    assert len(stripe_api.requests) == 1
    assert [p.status for p in payments(app)] == ["succeeded"]
    assert balance(app, saved_card) == 12345 - 5000


class DiesAfterCharging:
    """The real gateway, but the process dies the moment Stripe has answered (before anything is committed)."""

    def __init__(self, real):
        self.real = real

    def __getattr__(self, name):
        return getattr(self.real, name)

    def charge(self, **kwargs):
        self.real.charge(**kwargs)
        raise SystemExit("worker killed")


def test_a_worker_killed_between_the_charge_and_the_commit_leads_to_one_charge(app, stripe_api, saved_card):
    row_id = schedule(app, saved_card)
    real = app.extensions["ivr.gateway"]
    app.extensions["ivr.gateway"] = DiesAfterCharging(real)
    with pytest.raises(SystemExit):
        run(app, CHARGE_AT)
    app.extensions["ivr.gateway"] = real
    (row,) = scheduled(app)
    assert row.status == "charging"
    assert [p.status for p in payments(app)] == ["pending"]

    assert run(app, CHARGE_AT + timedelta(minutes=5)).total == 0  # its claim has not run out yet
    report = run(app, CHARGE_AT + timedelta(minutes=11))

    assert report.paid == 1
    keys = [r.headers["Idempotency-Key"] for r in stripe_api.requests]
    assert keys == [f"scheduled:{row_id}", f"scheduled:{row_id}"]
    assert len(stripe_api.intents) == 1  # Stripe answered the second request with the first PaymentIntent
    assert [p.status for p in payments(app)] == ["succeeded"]
    assert [r.status for r in scheduled(app)] == ["paid"]
    assert balance(app, saved_card) == 12345 - 5000
    assert len(texts(app, "receipt")) == 1


def test_an_attempt_stripes_webhook_settled_after_a_crash_is_not_charged_again(app, client, stripe_api, saved_card):
    from helpers import send_event

    schedule(app, saved_card)
    real = app.extensions["ivr.gateway"]
    app.extensions["ivr.gateway"] = DiesAfterCharging(real)
    with pytest.raises(SystemExit):
        run(app, CHARGE_AT)
    app.extensions["ivr.gateway"] = real
    intent = stripe_api.intents[0]
    assert send_event(client, "payment_intent.succeeded", intent).status_code == 200

    run(app, CHARGE_AT + timedelta(minutes=11))

    assert len(stripe_api.requests) == 1
    assert [r.status for r in scheduled(app)] == ["paid"]
    assert len(texts(app, "receipt")) == 1


class UnreachableOnce:
    """Stripe cannot be reached (the request never arrives) the first ``times`` times."""

    def __init__(self, real, times=1):
        self.real, self.times = real, times

    def __getattr__(self, name):
        return getattr(self.real, name)

    def charge(self, **kwargs):
        if self.times:
            self.times -= 1
            raise PaymentUnavailable("connection refused")
        return self.real.charge(**kwargs)


def test_stripe_unreachable_is_tried_again_later_with_the_same_key(app, stripe_api, saved_card):
    row_id = schedule(app, saved_card)
    app.extensions["ivr.gateway"] = UnreachableOnce(app.extensions["ivr.gateway"])

    first = run(app, CHARGE_AT)
    (row,) = scheduled(app)
    assert (first.retried, row.status, row.next_attempt_at) == (1, "scheduled", CHARGE_AT + timedelta(minutes=5))
    assert run(app, CHARGE_AT + timedelta(minutes=4)).total == 0
    second = run(app, CHARGE_AT + timedelta(minutes=5))

    assert second.paid == 1
    assert [r.headers["Idempotency-Key"] for r in stripe_api.requests] == [f"scheduled:{row_id}"]
    assert [p.status for p in payments(app)] == ["succeeded"]
    assert texts(app, "scheduled_failed") == []


def test_stripe_unreachable_all_morning_is_given_up_and_the_member_is_told(app, stripe_api, saved_card):
    schedule(app, saved_card)
    app.extensions["ivr.gateway"] = UnreachableOnce(app.extensions["ivr.gateway"], times=100)
    moment = CHARGE_AT
    while moment < CHARGE_AT + timedelta(hours=7):
        run(app, moment)
        moment += timedelta(minutes=30)

    (row,) = scheduled(app)
    assert (row.status, row.failure_code) == ("failed", "unavailable")
    (text,) = texts(app, "scheduled_failed")
    assert text.body == (
        "Riverbend Electric Cooperative: your scheduled payment of $50.00 for account ending 5001 did not go through: "
        "we could not reach the card processor. Nothing was charged. To pay, call (500) 555-0006."
    )
    assert balance(app, saved_card) == 12345


@pytest.mark.parametrize(("lang", "expected"), [
    ("en", ("Riverbend Electric Cooperative: your scheduled payment of $50.00 for account ending 5001 did not go "
            "through: your card was declined. Nothing was charged. To pay, call (500) 555-0006.")),
    ("es", ("Riverbend Electric Cooperative: su pago programado de $50.00 de la cuenta que termina en 5001 no se "
            "realizo: su tarjeta fue rechazada. No se cobro nada. Para pagar, llame al (500) 555-0006.")),
])
def test_a_card_kept_in_the_call_that_fails_off_session_is_texted_and_not_retried(app, stripe_api, account_id, lang, expected):
    # 4000000000000341: tokenized fine in the call, every later charge fails.
    kept = scheduling.KeptCard("cus_from_connector", "pm_card_chargeCustomerFail", "visa", "0341")
    schedule(app, account_id, kept=kept, lang=lang)

    run(app, CHARGE_AT)
    run(app, CHARGE_AT + timedelta(days=1))

    assert len(stripe_api.requests) == 1
    assert sent(stripe_api.requests[0])["customer"] == "cus_from_connector"
    (row,) = scheduled(app)
    assert (row.status, row.failure_code) == ("failed", "card_declined")
    (text,) = texts(app, "scheduled_failed")
    assert text.body == expected and text.respect_quiet_hours
    assert [p.status for p in payments(app)] == ["declined"]
    assert stripe_api.detached == ["pm_card_chargeCustomerFail"]  # a kept card is let go once its payment ended


def test_a_card_kept_in_the_call_is_charged_then_let_go(app, stripe_api, account_id):
    kept = scheduling.KeptCard("cus_from_connector", "pm_card_mastercard", "mastercard", "4444")
    schedule(app, account_id, kept=kept)

    assert run(app, CHARGE_AT).paid == 1

    assert stripe_api.detached == ["pm_card_mastercard"]
    (row,) = scheduled(app)
    assert (row.status, row.stripe_payment_method, row.card_last4) == ("paid", None, "4444")
    (payment,) = payments(app)
    assert (payment.card_brand, payment.card_last4, payment.channel) == ("mastercard", "4444", "scheduled")


def test_a_bank_that_wants_authentication_is_said_so(app, stripe_api, account_id):
    save_card(app, account_id, payment_method="pm_card_authenticationRequired", last4="3155")
    schedule(app, account_id)

    run(app, CHARGE_AT)

    (row,) = scheduled(app)
    assert (row.status, row.failure_code) == ("failed", "authentication_required")
    (text,) = texts(app, "scheduled_failed")
    assert "did not go through: your bank wants to approve it, which can't be done automatically." in text.body


def test_a_card_forgotten_before_the_day_is_not_charged_and_the_member_is_told(app, stripe_api, saved_card):
    schedule(app, saved_card)
    with app.app_context():
        saved_cards.forget(db.session.get(Account, saved_card), by="member")

    run(app, CHARGE_AT)

    assert [r.headers.get("Idempotency-Key") for r in stripe_api.requests if "payment_intents" in r.url] == []
    assert [(r.status, r.failure_code) for r in scheduled(app)] == [("failed", "no_card")]
    assert "did not go through: there is no card on file." in texts(app, "scheduled_failed")[0].body


def test_never_more_than_is_owed_on_the_day_and_nothing_when_nothing_is(app, stripe_api, saved_card, make_account):
    schedule(app, saved_card, amount=10000)
    with app.app_context():
        db.session.get(Account, saved_card).balance_cents = 3000  # paid most of it by phone meanwhile
        db.session.commit()
    run(app, CHARGE_AT)
    assert sent(stripe_api.requests[0])["amount"] == "3000"

    schedule(app, saved_card, pay_on=PAY_ON + timedelta(days=1), key="CA2:7")
    run(app, CHARGE_AT + timedelta(days=1))
    assert len(stripe_api.requests) == 1
    assert [(r.status, r.failure_code) for r in scheduled(app)] == [("paid", None), ("skipped", "nothing_owed")]


def test_cancelling_is_possible_until_24_hours_before_the_charge(app, saved_card):
    first = schedule(app, saved_card)
    second = schedule(app, saved_card, key="CA1:8")
    deadline = CHARGE_AT - timedelta(hours=24)
    with app.app_context():
        assert scheduling.cancel(first, by="member", now=deadline - timedelta(seconds=1), account_id=saved_card) == "cancelled"
        assert scheduling.cancel(first, by="member", now=deadline - timedelta(seconds=1)) == "gone"
        assert scheduling.cancel(second, by="member", now=deadline) == "too_late"
        assert scheduling.cancel(second, by="member", now=deadline - timedelta(hours=1), account_id=saved_card + 1) == "gone"
        db.session.commit()

    run(app, CHARGE_AT)
    assert [r.status for r in scheduled(app)] == ["cancelled", "paid"]


def test_a_day_outside_the_rules_is_refused_even_without_the_phone(app, saved_card):
    with app.app_context():
        account = db.session.get(Account, saved_card)
        for day, reason in ((date(2026, 11, 30), "past"), (date(2026, 12, 11), "after_due")):
            with pytest.raises(scheduling.Refused) as refused:
                scheduling.schedule(account, amount_cents=5000, pay_on=day, created_key=f"k{day}", call_sid=None,
                                    language="en", now=NOW)
            assert refused.value.reason == reason


def test_an_attempt_older_than_stripes_memory_of_its_key_is_never_sent_again(app, stripe_api, saved_card):
    from ivr.models import Payment, utcnow

    schedule(app, saved_card)
    real = app.extensions["ivr.gateway"]
    app.extensions["ivr.gateway"] = DiesAfterCharging(real)
    with pytest.raises(SystemExit):
        run(app, CHARGE_AT)
    app.extensions["ivr.gateway"] = real
    with app.app_context():  # the worker stayed down for half a day
        db.session.execute(db.update(Payment).values(created_at=utcnow() - timedelta(hours=13)))
        db.session.commit()

    run(app, CHARGE_AT + timedelta(hours=13))

    assert len(stripe_api.requests) == 1
    assert [(r.status, r.failure_code) for r in scheduled(app)] == [("failed", "outcome_unknown")]
    assert texts(app, "scheduled_failed") == []  # a person checks Stripe; the member is not told it failed


def test_an_unfinished_attempt_whose_card_on_file_changed_is_not_sent_again(app, stripe_api, saved_card):
    schedule(app, saved_card)
    real = app.extensions["ivr.gateway"]
    app.extensions["ivr.gateway"] = DiesAfterCharging(real)
    with pytest.raises(SystemExit):
        run(app, CHARGE_AT)
    app.extensions["ivr.gateway"] = real
    with app.app_context():
        saved_cards.forget(db.session.get(Account, saved_card), by="member")
    save_card(app, saved_card, payment_method="pm_card_mastercard", brand="mastercard", last4="4444")

    run(app, CHARGE_AT + timedelta(minutes=11))

    assert len([r for r in stripe_api.requests if "payment_intents" in r.url]) == 1
    assert [(r.status, r.failure_code) for r in scheduled(app)] == [("failed", "outcome_unknown")]
    assert texts(app, "scheduled_failed") == []


def test_once_charges_a_backlog_larger_than_a_batch_each_payment_once(app, stripe_api, saved_card):
    ids = [schedule(app, saved_card, amount=1000, key=f"CA1:{n}") for n in range(5)]

    with app.app_context():
        report = worker.run_until_done(CHARGE_AT, limit=2)  # what `ivr worker --once` runs, two rows a batch
        db.session.remove()

    assert (report.paid, report.failed) == (5, 0)
    keys = sorted(request.headers["Idempotency-Key"] for request in stripe_api.requests)
    assert keys == sorted(f"scheduled:{row_id}" for row_id in ids)
    assert [row.status for row in scheduled(app)] == ["paid"] * 5
    assert balance(app, saved_card) == 12345 - 5000
    assert run(app, CHARGE_AT + timedelta(hours=1)).total == 0
